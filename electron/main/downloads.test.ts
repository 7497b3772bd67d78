import { describe, expect, it } from 'vitest';
import { cleanDownloadName, isInlineMimeType, planDownload, withDisposition } from './downloads';
import { APP_INDEX_URL, isTrustedIpcSender, resolveAppFile, rendererUrl } from './security';

describe('downloads', () => {
  it('shows only pictures, sound, video and documents inline', () => {
    for (const t of ['image/jpeg', 'image/webp', 'audio/ogg; codecs=opus', 'video/mp4', 'application/pdf', 'text/plain']) expect(isInlineMimeType(t), t).toBe(true);
    for (const t of ['text/html', 'image/svg+xml', 'application/javascript', 'application/zip', 'application/x-msdownload', 'image/', '', null]) expect(isInlineMimeType(t), String(t)).toBe(false);
    expect(withDisposition({ 'Content-Type': ['text/html'] }, 'text/html')['Content-Disposition']).toEqual(['attachment']);
    expect(withDisposition({ 'Content-Type': ['image/png'] }, 'image/png')['Content-Disposition']).toBeUndefined();
  });

  it('cleans a patient-supplied file name so it stays one file in the chosen folder', () => {
    expect(cleanDownloadName('../../.bashrc')).toBe('bashrc');
    expect(cleanDownloadName('C:\\Windows\\System32\\evil.dll')).toBe('evil.dll');
    expect(cleanDownloadName('uitslag\u202Efdp.exe')).toBe('uitslag_fdp.exe');
    expect(cleanDownloadName('con.txt')).toBe('_con.txt');
    expect(cleanDownloadName('rapport?.pdf. ')).toBe('rapport_.pdf');
    expect(cleanDownloadName('...')).toBe('download');
    const long = cleanDownloadName(`${'a'.repeat(300)}.pdf`);
    expect(long).toHaveLength(120);
    expect(long.endsWith('.pdf')).toBe(true);
  });

  it('always asks where to save and never opens the file', () => {
    expect(planDownload({ suggestedName: '', url: 'blob:app://clinic-inbox/1234' })).toEqual({ defaultName: 'download', askWhere: true, openAfterwards: false });
    expect(planDownload({ suggestedName: 'scan.html', url: 'app://clinic-inbox/x' }).defaultName).toBe('scan.html');
  });
});

describe('app:// protocol', () => {
  const root = '/opt/Clinic Inbox/resources/app.asar/out/renderer';
  it('serves files of the bundle only', () => {
    expect(resolveAppFile('app://clinic-inbox/index.html', root)).toBe(`${root}/index.html`);
    expect(resolveAppFile('app://clinic-inbox/', root)).toBe(`${root}/index.html`);
    expect(resolveAppFile('app://clinic-inbox/assets/index-abc.js?v=1', root)).toBe(`${root}/assets/index-abc.js`);
    // Dot segments are resolved by the URL parser first: they cannot climb above the bundle.
    expect(resolveAppFile('app://clinic-inbox/assets/../../../../etc/passwd', root)).toBe(`${root}/etc/passwd`);
    expect(resolveAppFile('app://clinic-inbox/%2e%2e/%2e%2e/secret', root)).toBe(`${root}/secret`);
    expect(resolveAppFile('app://clinic-inbox/a/%2E%2E%2F%2E%2E%2Fsecret', root)).toBeNull();
    expect(resolveAppFile('app://clinic-inbox/..%5C..%5Cwin.ini', root)).toBeNull();
    expect(resolveAppFile('app://other-host/index.html', root)).toBeNull();
    expect(resolveAppFile('file:///etc/passwd', root)).toBeNull();
  });

  it('is the packaged window’s address and the only IPC sender trusted there', () => {
    expect(rendererUrl({ packaged: true, devServerUrl: undefined, indexFileUrl: APP_INDEX_URL })).toBe(APP_INDEX_URL);
    expect(isTrustedIpcSender({ frameUrl: 'app://clinic-inbox/index.html#/inbox', isMainFrame: true }, APP_INDEX_URL)).toBe(true);
    expect(isTrustedIpcSender({ frameUrl: 'app://clinic-inbox/index.html', isMainFrame: false }, APP_INDEX_URL)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: 'app://clinic-inbox/assets/evil.html', isMainFrame: true }, APP_INDEX_URL)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: 'app://evil/index.html', isMainFrame: true }, APP_INDEX_URL)).toBe(false);
    expect(isTrustedIpcSender({ frameUrl: 'file:///opt/Clinic%20Inbox/resources/app.asar/out/renderer/index.html', isMainFrame: true }, APP_INDEX_URL)).toBe(false);
  });
});
