import type { WebPreferences } from 'electron';
import { LOOPBACK_HOSTS, urlParts } from '../../shared/urls';

/**
 * Every security decision of the shell as a small pure function, so it is unit-tested here even
 * though the Electron binary cannot run on the CI machines. `index.ts` only wires these up.
 */

/** The only web preferences a window of ours is created with. */
export function secureWebPreferences(preloadPath: string): WebPreferences {
  return {
    preload: preloadPath,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webviewTag: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    experimentalFeatures: false,
    navigateOnDragDrop: false,
    safeDialogs: true,
    spellcheck: false,
  };
}

/** Same policy as the meta tag in renderer/index.html; also sent as a header for the dev server. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/**
 * Where the window loads the app from. The dev server (`ELECTRON_RENDERER_URL`, set by
 * electron-vite) is honoured only in an unpackaged build and only on this computer: in a packaged
 * app an environment variable must not be able to point the window (and so the IPC sender check)
 * at another origin.
 */
export function rendererUrl(input: { packaged: boolean; devServerUrl: string | undefined; indexFileUrl: string }): string {
  const dev = input.devServerUrl;
  if (input.packaged || !dev) return input.indexFileUrl;
  const url = urlParts(dev);
  return url.protocol === 'http:' && LOOPBACK_HOSTS.includes(url.hostname) ? dev : input.indexFileUrl;
}

/**
 * The packaged renderer is served from `app://clinic-inbox/…` (a privileged, standard, secure
 * scheme of our own) instead of `file://`, so the file protocol keeps no extra privileges (the
 * `grantFileProtocolExtraPrivileges` fuse is off) and a local HTML file can never pass as the app.
 */
export const APP_SCHEME = 'app';
export const APP_HOST = 'clinic-inbox';
export const APP_INDEX_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

/** The file under `root` an `app://clinic-inbox/…` request names; null for another host or a path that leaves `root`. */
export function resolveAppFile(requestUrl: string, root: string, sep = '/'): string | null {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return null;
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) return null;
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return null;
  }
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) parts.push('index.html');
  if (parts.some((p) => p === '..' || p.includes('\\') || p.includes('\0') || /^[a-zA-Z]:$/.test(p))) return null;
  return [root.replace(/[\\/]+$/, ''), ...parts].join(sep);
}

/** In-app navigation is never allowed: the renderer is a single page loaded from the app bundle. */
export function isAllowedNavigation(_url: string): boolean {
  return false;
}

/**
 * Is `url` the page we loaded ourselves? For the packaged app that is one file (compared by path,
 * ignoring query and fragment); for the development server, the server's origin.
 */
export function isAppUrl(url: string, appUrl: string): boolean {
  let candidate: URL;
  let app: URL;
  try {
    candidate = new URL(url);
    app = new URL(appUrl);
  } catch {
    return false;
  }
  if (app.protocol === 'file:' || app.protocol === `${APP_SCHEME}:`) {
    return candidate.protocol === app.protocol && candidate.host === app.host && candidate.pathname === app.pathname;
  }
  if (app.protocol !== 'http:' && app.protocol !== 'https:') return false;
  return candidate.origin === app.origin;
}

export interface IpcSenderInfo {
  /** `event.senderFrame?.url`; null when the frame is gone. */
  frameUrl: string | null;
  /** Whether the sending frame is its page's main frame (`senderFrame === sender.mainFrame`). */
  isMainFrame: boolean;
}

/** Every IPC message is checked: our page, its main frame, nothing embedded in it. */
export function isTrustedIpcSender(sender: IpcSenderInfo, appUrl: string): boolean {
  return sender.isMainFrame && sender.frameUrl !== null && isAppUrl(sender.frameUrl, appUrl);
}

/**
 * Links the app may hand to the OS browser: https only, to hosts staff legitimately need (Meta's
 * business tools, WhatsApp help). Everything else — including any link inside a patient message —
 * stays unopened.
 */
export const EXTERNAL_LINK_HOSTS: readonly string[] = [
  'business.facebook.com',
  'developers.facebook.com',
  'faq.whatsapp.com',
  'www.whatsapp.com',
  // A location a patient shared, "open in maps" (the core builds the link: coordinates only).
  'www.openstreetmap.org',
  // Connecting Google Calendar: Google's consent page opens in the system browser (loopback redirect back to the core).
  'accounts.google.com',
];

export function isAllowedExternalLink(url: string, allowedHosts: readonly string[] = EXTERNAL_LINK_HOSTS): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return parsed.protocol === 'https:' && parsed.username === '' && parsed.password === '' && parsed.port === '' && allowedHosts.includes(parsed.hostname);
}

/** The renderer asks for nothing: camera, microphone, geolocation, notifications, clipboard reads — all refused. */
export function isPermissionGranted(_permission: string): boolean {
  return false;
}

/** Adds our CSP to a response's headers (replacing any the server sent). */
export function withContentSecurityPolicy(headers: Record<string, string[]> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (name.toLowerCase() !== 'content-security-policy') out[name] = value;
  out['Content-Security-Policy'] = [CONTENT_SECURITY_POLICY];
  return out;
}
