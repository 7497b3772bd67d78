import type { WebPreferences } from 'electron';

/** The only web preferences a window of ours is created with. */
export function secureWebPreferences(preloadPath: string): WebPreferences {
  return {
    preload: preloadPath,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    webviewTag: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    spellcheck: false,
  };
}

/** In-app navigation is never allowed: the renderer is a single page loaded from the app bundle. */
export function isAllowedNavigation(_url: string): boolean {
  return false;
}
