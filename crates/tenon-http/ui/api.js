// The admin API client: the bearer token (kept in sessionStorage, sent
// only in the Authorization header, never in a URL), JSON calls with the
// API's error JSON turned into ApiError, and the live event stream read
// with fetch() (EventSource cannot send the header).

const KEY = 'tenon.token';
const BASE = new URL('api/v1/', document.baseURI);

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'http_' + status;
    this.category = error.category || '';
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** Called when the server says the token is unknown or revoked. */
let onSignedOut = () => {};
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

function headers(extra) {
  const out = new Headers(extra || {});
  const secret = token.get();
  if (secret) out.set('Authorization', 'Bearer ' + secret);
  return out;
}

async function failure(response) {
  let error = { message: `The server answered ${response.status} ${response.statusText}` };
  try {
    const body = await response.json();
    if (body && body.error) error = body.error;
  } catch {
    // not JSON: keep the status line
  }
  const failed = new ApiError(response.status, error);
  if (response.status === 401) onSignedOut(failed);
  return failed;
}

/**
 * Calls the API: `path` is relative to /api/v1/ (query included).
 * `json` is sent as a JSON body; `body` as is (an upload).
 */
export async function call(method, path, { json, body, extraHeaders } = {}) {
  const init = { method, headers: headers(extraHeaders), cache: 'no-store', credentials: 'omit' };
  if (json !== undefined) {
    init.headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(new URL(path, BASE), init);
  } catch {
    throw new ApiError(0, { code: 'offline', message: 'The server cannot be reached.' });
  }
  if (!response.ok) throw await failure(response);
  const type = response.headers.get('Content-Type') || '';
  return type.includes('json') ? response.json() : response.text();
}

export const get = (path) => call('GET', path);
export const post = (path, json) => call('POST', path, { json: json === undefined ? {} : json });
export const put = (path, json) => call('PUT', path, { json });
export const del = (path) => call('DELETE', path);

/** The path of a plugin's routes: `plugins/{publisher}/{name}`. */
export function pluginPath(id) {
  const [publisher, name] = id.split('/');
  return `plugins/${encodeURIComponent(publisher)}/${encodeURIComponent(name)}`;
}

/** Uploads a .tenon archive for a preview; nothing is stored yet. */
export function upload(file, signatures) {
  const extraHeaders = { 'Content-Type': 'application/octet-stream', 'X-Tenon-Filename': file.name.replace(/[^\x20-\x7e]/g, '_') };
  if (signatures) extraHeaders['X-Tenon-Signatures'] = signatures;
  return call('POST', 'uploads', { body: file, extraHeaders });
}

/** Parses server-sent events out of text chunks. */
export class SseParser {
  constructor(onEvent) {
    this.buffer = '';
    this.onEvent = onEvent;
  }
  push(chunk) {
    this.buffer += chunk.replace(/\r\n?/g, '\n');
    let end;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const event = { id: null, event: 'message', data: [] };
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
        else if (field === 'data') event.data.push(value);
      }
      if (event.data.length) this.onEvent({ ...event, data: event.data.join('\n') });
    }
  }
}

/**
 * Follows the event stream until stop() is called: reconnects with
 * Last-Event-ID after a drop (the server ends streams after a while),
 * reports 'live' / 'reconnecting' / 'stopped' to onState.
 */
export function follow(onEvent, onState) {
  let stopped = false;
  let controller = null;
  let last = null;
  const run = async () => {
    let wait = 1000;
    while (!stopped) {
      controller = new AbortController();
      try {
        const extra = { Accept: 'text/event-stream' };
        if (last) extra['Last-Event-ID'] = last;
        const response = await fetch(new URL('events/stream', BASE), {
          headers: headers(extra), signal: controller.signal, cache: 'no-store', credentials: 'omit',
        });
        if (!response.ok) {
          const error = await failure(response);
          if (response.status === 401 || response.status === 403) {
            stopped = true;
            onState('stopped', error);
            return;
          }
          throw error;
        }
        onState('live');
        wait = 1000;
        const parser = new SseParser((event) => {
          if (event.id) last = event.id;
          let data = null;
          try {
            data = JSON.parse(event.data);
          } catch {
            return;
          }
          onEvent(event.event, data);
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(value);
        }
      } catch {
        // dropped: reconnect below
      }
      if (stopped) break;
      onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 15000);
    }
    onState('stopped');
  };
  run();
  return {
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
