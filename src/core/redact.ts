/**
 * Credentials inside URLs (`https://user:key@host/...`, `?api_key=...`) must not reach files, logs or
 * printed messages. These helpers rewrite every URL found in a text, or in every string of a JSON
 * value, keeping the rest of it readable.
 */

/** Query parameters whose values are secrets. */
const SECRET_PARAM = /^(key|api[-_]?key|x[-_]api[-_]key|token|access[-_]?token|auth|authorization|secret|client[-_]secret|password|passwd|pass|sig|signature|credential|credentials)$/i;

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

function redactURL(url: string): string {
  // userinfo: everything between :// and the last @ before the path
  let out = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@');
  out = out.replace(/([?&])([^=&#]+)=([^&#]*)/g, (whole, sep: string, name: string) => (SECRET_PARAM.test(decodeURIComponentSafe(name)) ? `${sep}${name}=***` : whole));
  return out;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The text with credentials in every URL it contains replaced by ***. */
export function redactCredentials(text: string): string {
  return text.replace(URL_IN_TEXT, redactURL);
}

/** A copy of a JSON-like value with redactCredentials applied to every string (keys included). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactCredentials(value) as T;
  if (Array.isArray(value)) return value.map(redactDeep) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redactCredentials(k), redactDeep(v)])) as T;
  }
  return value;
}

/**
 * Text quoted from files (a parser's message with a snippet of a garbage file) made safe to print:
 * control characters and undecodable bytes (U+FFFD) as escapes, each line cut at `maxLine` characters.
 */
export function printable(text: string, maxLine = 400): string {
  return text
    .split('\n')
    .map((line) => {
      const escaped = line.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]/g, (c) => (c === '\ufffd' ? '\\ufffd' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
      return escaped.length > maxLine ? `${escaped.slice(0, maxLine)}... (${escaped.length - maxLine} more characters)` : escaped;
    })
    .join('\n');
}
