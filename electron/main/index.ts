import { readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, nativeImage, net, Notification, protocol, session, shell, Tray, utilityProcess, webContents, type IpcMainInvokeEvent } from 'electron';
import pino from 'pino';
import { CHOOSE_CHANNEL } from '../../shared/dialogs';
import { createCoreBridge, EVENT_CHANNEL, INVOKE_CHANNEL, parseInvokeArgs, type CoreBridge } from './coreBridge';
import { checkChoice, dialogOptions, kindOfPath, parseChooseRequest } from './dialogs';
import { notificationFor, parseShellSettings, trayTooltip, type ShellSettings } from './notifications';
import { isInlineMimeType, planDownload, withDisposition } from './downloads';
import {
  APP_INDEX_URL,
  APP_SCHEME,
  isAllowedExternalLink,
  isAppUrl,
  isAllowedNavigation,
  isPermissionGranted,
  isTrustedIpcSender,
  rendererUrl,
  resolveAppFile,
  secureWebPreferences,
  withContentSecurityPolicy,
} from './security';
import { TRAY_ICON_PNG_BASE64 } from './trayIcon';
import { startUpdater } from './updates/updater';

const logger = pino({ level: 'info', base: { part: 'shell' } });
const rendererRoot = join(import.meta.dirname, '../renderer');
const appUrl = rendererUrl({ packaged: app.isPackaged, devServerUrl: process.env['ELECTRON_RENDERER_URL'], indexFileUrl: APP_INDEX_URL });
// Before ready: our bundle's own scheme, standard and secure so 'self', fetch and ES modules work.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

let mainWindow: BrowserWindow | null = null;
let tray: Tray | null = null;
let core: CoreBridge | null = null;
let settings: ShellSettings;

function readSettings(): ShellSettings {
  let text: string | null = null;
  try {
    text = readFileSync(join(app.getPath('userData'), 'settings.json'), 'utf8');
  } catch {
    text = null;
  }
  return parseShellSettings(text);
}

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 900,
    minHeight: 560,
    show: false,
    title: 'Clinic Inbox',
    webPreferences: secureWebPreferences(join(import.meta.dirname, '../preload/index.cjs')),
  });
  window.webContents.setWindowOpenHandler(({ url }) => {
    if (isAllowedExternalLink(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  window.webContents.on('will-navigate', (event, url) => {
    if (!isAllowedNavigation(url)) event.preventDefault();
  });
  window.webContents.on('will-redirect', (event) => event.preventDefault());
  window.webContents.on('will-attach-webview', (event) => event.preventDefault());
  window.once('ready-to-show', () => window.show());
  window.on('closed', () => {
    if (mainWindow === window) mainWindow = null;
  });
  // The window's connection (its signed-in session) is closed with it; the session row stays.
  const conn = window.webContents.id;
  window.on('closed', () => {
    core?.disconnect(conn);
    if (mainWindow === window) mainWindow = null;
  });
  void window.loadURL(appUrl);
  return window;
}

function showWindow(): void {
  if (!mainWindow) mainWindow = createWindow();
  if (mainWindow.isMinimized()) mainWindow.restore();
  mainWindow.show();
  mainWindow.focus();
}

/** Events come per window connection: each goes to its own window only. */
function onCoreEvent(conn: number, event: string, payload: unknown): void {
  const target = webContents.fromId(conn);
  if (target && !target.isDestroyed()) target.send(EVENT_CHANNEL, event, payload);
  // One notification per message, from the main window's (signed-in) connection.
  if (event === 'message.received' && conn === mainWindow?.webContents.id) {
    const decision = notificationFor(settings, { windowFocused: mainWindow?.isFocused() ?? false });
    if (decision && Notification.isSupported()) {
      const notification = new Notification({ title: decision.title, body: decision.body, silent: false });
      notification.on('click', showWindow);
      notification.show();
    }
  }
}

function startCore(): CoreBridge {
  return createCoreBridge({
    spawn: () =>
      utilityProcess.fork(join(import.meta.dirname, 'coreProcess.js'), ['--data-dir', join(app.getPath('userData'), 'data')], {
        serviceName: 'Clinic Inbox core',
        stdio: 'inherit',
      }),
    onEvent: onCoreEvent,
    logger,
  });
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', showWindow);
  // Nothing of ours ever creates a webview, opens a window or navigates; refuse it for every contents.
  app.on('web-contents-created', (_e, contents) => {
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });

  void app.whenReady().then(() => {
    settings = readSettings();
    protocol.handle(APP_SCHEME, (request) => {
      const file = resolveAppFile(request.url, rendererRoot, sep);
      if (!file) return new Response('Not found', { status: 404 });
      return net.fetch(pathToFileURL(file).href, { bypassCustomProtocolHandlers: true });
    });
    // A download is saved only where the user chooses, under a cleaned name, and never opened.
    session.defaultSession.on('will-download', (_event, item) => {
      const plan = planDownload({ suggestedName: item.getFilename(), url: item.getURL() });
      item.setSaveDialogOptions({ title: 'Save file', defaultPath: join(app.getPath('downloads'), plan.defaultName), properties: ['createDirectory', 'showOverwriteConfirmation'] });
      logger.info({ inline: isInlineMimeType(item.getMimeType()) }, 'download asked where to save');
    });
    session.defaultSession.setPermissionRequestHandler((_wc, permission, callback) => callback(isPermissionGranted(permission)));
    session.defaultSession.setPermissionCheckHandler((_wc, permission) => isPermissionGranted(permission));
    session.defaultSession.webRequest.onHeadersReceived((details, callback) =>
      callback({
        responseHeaders: withContentSecurityPolicy(
          // A page or frame that is not our app may render only pictures, sound, video and documents; anything else downloads.
          (details.resourceType === 'mainFrame' || details.resourceType === 'subFrame') && !isAppUrl(details.url, appUrl)
            ? withDisposition(details.responseHeaders ?? {}, details.responseHeaders?.['content-type']?.[0] ?? details.responseHeaders?.['Content-Type']?.[0] ?? 'application/octet-stream')
            : details.responseHeaders,
        ),
      }),
    );

    core = startCore();
    const updater = startUpdater({ dataDir: join(app.getPath('userData'), 'data'), logger });
    app.once('before-quit', () => updater.stop());
    const untrusted = (event: IpcMainInvokeEvent): boolean => {
      const frame = event.senderFrame;
      if (isTrustedIpcSender({ frameUrl: frame?.url ?? null, isMainFrame: !!frame && frame === event.sender.mainFrame }, appUrl)) return false;
      logger.warn('refused IPC from an untrusted frame');
      return true;
    };
    const forbidden = { ok: false, error: { code: 'FORBIDDEN', message: 'This window may not call the app.' } } as const;
    ipcMain.handle(INVOKE_CHANNEL, async (event, method: unknown, params: unknown) => {
      if (untrusted(event)) return forbidden;
      const call = parseInvokeArgs(method, params);
      if (!call) return { ok: false, error: { code: 'BAD_REQUEST', message: 'Unknown method.' } };
      return core!.invoke(event.sender.id, call.method, call.params);
    });
    // The backup folder, the patient export's folder, the backup file to restore (dialogs.ts decides).
    ipcMain.handle(CHOOSE_CHANNEL, async (event, raw: unknown) => {
      if (untrusted(event)) return forbidden;
      const request = parseChooseRequest(raw);
      if (!request) return { ok: false, error: { code: 'BAD_REQUEST', message: 'Unknown dialog.' } };
      const options = dialogOptions(request, { documents: app.getPath('documents') });
      const window = BrowserWindow.fromWebContents(event.sender);
      const answer = window ? await dialog.showOpenDialog(window, options) : await dialog.showOpenDialog(options);
      return checkChoice(request, answer, kindOfPath);
    });

    tray = new Tray(nativeImage.createFromBuffer(Buffer.from(TRAY_ICON_PNG_BASE64, 'base64')));
    tray.setToolTip(trayTooltip(0));
    tray.setContextMenu(
      Menu.buildFromTemplate([
        { label: 'Open Clinic Inbox', click: showWindow },
        { type: 'separator' },
        { label: 'Quit', click: () => app.quit() },
      ]),
    );
    tray.on('click', showWindow);

    mainWindow = createWindow();
    app.on('activate', showWindow);
  });

  app.on('window-all-closed', () => {
    // Stays in the tray on Windows/Linux so new messages still notify; macOS keeps the dock icon.
    if (!tray) app.quit();
  });
  app.on('before-quit', () => {
    core?.stop();
    core = null;
  });
}
