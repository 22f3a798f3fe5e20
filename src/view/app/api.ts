/** Fetching from the dashboard's API, refetching whenever the server reports a write to the run. */
import { useEffect, useState } from 'preact/hooks';

export type Loaded<T> = { data: T; error: null } | { data: null; error: string | null };

/**
 * GETs `url` as JSON; `version` changes force a refetch (live updates). While a new URL loads, the
 * previous URL's data is not returned (a page never shows one request's rows under another's title);
 * a refetch of the same URL keeps showing the old data until the new arrives.
 */
export function useJson<T>(url: string | null, version = 0): Loaded<T> {
  const [state, setState] = useState<{ url: string | null; loaded: Loaded<T> }>({ url: null, loaded: { data: null, error: null } });
  useEffect(() => {
    if (!url) return;
    let live = true;
    fetch(url)
      .then(async (r) => {
        if (!r.ok) throw new Error(`${r.status} ${(await r.json().catch(() => ({ error: r.statusText }))).error ?? ''}`);
        return (await r.json()) as T;
      })
      .then((data) => live && setState({ url, loaded: { data, error: null } }))
      .catch((e: unknown) => live && setState({ url, loaded: { data: null, error: String(e instanceof Error ? e.message : e) } }));
    return () => {
      live = false;
    };
  }, [url, version]);
  return state.url === url ? state.loaded : { data: null, error: null };
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
