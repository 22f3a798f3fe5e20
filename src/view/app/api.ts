/** Fetching from the dashboard's API, refetching whenever the server reports a write to the run. */
import { useEffect, useState } from 'preact/hooks';

export type Loaded<T> = { data: T; error: null } | { data: null; error: string | null };

/** GETs `url` as JSON; `version` changes force a refetch (live updates). */
export function useJson<T>(url: string | null, version = 0): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ data: null, error: null });
  useEffect(() => {
    if (!url) return;
    let live = true;
    fetch(url)
      .then(async (r) => {
        if (!r.ok) throw new Error(`${r.status} ${(await r.json().catch(() => ({ error: r.statusText }))).error ?? ''}`);
        return (await r.json()) as T;
      })
      .then((data) => live && setState({ data, error: null }))
      .catch((e: unknown) => live && setState({ data: null, error: String(e instanceof Error ? e.message : e) }));
    return () => {
      live = false;
    };
  }, [url, version]);
  return state;
}

/** A counter that goes up whenever the server says something under the run (or the runs folder) was written. */
export function useChanges(run?: string): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const events = new EventSource(`/api/events${run ? `?run=${encodeURIComponent(run)}` : ''}`);
    events.addEventListener('change', () => setVersion((v) => v + 1));
    return () => events.close();
  }, [run]);
  return version;
}

/** A query string from the set fields. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : '';
}
