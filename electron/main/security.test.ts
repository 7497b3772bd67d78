import { describe, expect, it } from 'vitest';
import {
  CONTENT_SECURITY_POLICY,
  isAllowedExternalLink,
  isAllowedNavigation,
  isAppUrl,
  isPermissionGranted,
  isTrustedIpcSender,
  rendererUrl,
  secureWebPreferences,
  withContentSecurityPolicy,
} from './security';

const packaged = 'file:///opt/Clinic%20Inbox/resources/app.asar/out/renderer/index.html';
const dev = 'http://localhost:5173/';

describe('window preferences', () => {
  it('isolates and sandboxes the renderer with no Node and no webview', () => {
    const prefs = secureWebPreferences('/app/preload/index.cjs');
    expect(prefs).toMatchObject({
      preload: '/app/preload/index.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webviewTag: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
    });
  });
});

describe('navigation and links', () => {
  it('never navigates the app window anywhere, not even to itself', () => {
    for (const url of [packaged, dev, 'https://evil.example/', 'file:///etc/passwd', 'javascript:alert(1)']) expect(isAllowedNavigation(url)).toBe(false);
  });

  it('opens only https links to allow-listed hosts in the OS browser', () => {
    expect(isAllowedExternalLink('https://business.facebook.com/settings')).toBe(true);
    expect(isAllowedExternalLink('http://business.facebook.com/')).toBe(false);
    expect(isAllowedExternalLink('https://business.facebook.com.evil.example/')).toBe(false);
    expect(isAllowedExternalLink('https://user:pw@business.facebook.com/')).toBe(false);
    expect(isAllowedExternalLink('https://business.facebook.com:8443/')).toBe(false);
    expect(isAllowedExternalLink('https://patient-sent-link.example/phish')).toBe(false);
    expect(isAllowedExternalLink('file:///C:/Windows/system32/calc.exe')).toBe(false);
    expect(isAllowedExternalLink('not a url')).toBe(false);
  });
});

describe('IPC sender check', () => {
  it('accepts our own page in its main frame', () => {
    expect(isTrustedIpcSender({ frameUrl: packaged, isMainFrame: true }, packaged)).toBe(true);
    expect(isTrustedIpcSender({ frameUrl: `${packaged}#/inbox`, isMainFrame: true }, packaged)).toBe(true);
    expect(isTrustedIpcSender({ frameUrl: 'http://localhost:5173/index.html', isMainFrame: true }, dev)).toBe(true);
  });

  it('refuses subframes, other files, other origins and vanished frames', () => {
    expect(isTrustedIpcSender({ frameUrl: packaged, isMainFrame: false }, packaged)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: 'file:///tmp/evil.html', isMainFrame: true }, packaged)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: 'https://evil.example/', isMainFrame: true }, packaged)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: 'http://localhost:5174/', isMainFrame: true }, dev)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: 'file://other-host/opt/Clinic%20Inbox/resources/app.asar/out/renderer/index.html', isMainFrame: true }, packaged)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: null, isMainFrame: true }, packaged)).toBe(false);
    expect(isAppUrl('garbage', packaged)).toBe(false);
    expect(isAppUrl(packaged, 'about:blank')).toBe(false);
  });
});

describe('permissions and CSP', () => {
  it('denies every permission request', () => {
    for (const p of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal', 'fullscreen']) expect(isPermissionGranted(p)).toBe(false);
  });

  it('sends a CSP without unsafe-inline or unsafe-eval and replaces any the server sent', () => {
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-(inline|eval)/);
    expect(CONTENT_SECURITY_POLICY).toMatch(/script-src 'self'/);
    expect(CONTENT_SECURITY_POLICY).toMatch(/object-src 'none'/);
    const headers = withContentSecurityPolicy({ 'content-security-policy': ["script-src *"], 'Content-Type': ['text/html'] });
    expect(headers['Content-Security-Policy']).toEqual([CONTENT_SECURITY_POLICY]);
    expect(headers['content-security-policy']).toBeUndefined();
    expect(headers['Content-Type']).toEqual(['text/html']);
  });
});

describe('where the window loads the app from', () => {
  it('ignores a dev-server address in a packaged app, and any that is not on this computer', () => {
    expect(rendererUrl({ packaged: true, devServerUrl: 'https://evil.example/', indexFileUrl: packaged })).toBe(packaged);
    expect(rendererUrl({ packaged: true, devServerUrl: dev, indexFileUrl: packaged })).toBe(packaged);
    expect(rendererUrl({ packaged: false, devServerUrl: 'https://evil.example/', indexFileUrl: packaged })).toBe(packaged);
    expect(rendererUrl({ packaged: false, devServerUrl: 'http://localhost.evil.example:5173/', indexFileUrl: packaged })).toBe(packaged);
    expect(rendererUrl({ packaged: false, devServerUrl: dev, indexFileUrl: packaged })).toBe(dev);
    expect(rendererUrl({ packaged: false, devServerUrl: undefined, indexFileUrl: packaged })).toBe(packaged);
  });
});
