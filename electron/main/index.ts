import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, ipcMain, Menu, nativeImage, Notification, session, shell, Tray, utilityProcess, webContents } from 'electron';
import pino from 'pino';
import { createCoreBridge, EVENT_CHANNEL, INVOKE_CHANNEL, parseInvokeArgs, type CoreBridge } from './coreBridge';
import { notificationFor, parseShellSettings, trayTooltip, type ShellSettings } from './notifications';
import {
  isAllowedExternalLink,
  isAllowedNavigation,
  isPermissionGranted,
  isTrustedIpcSender,
  rendererUrl,
  secureWebPreferences,
  withContentSecurityPolicy,
} from './security';
import { TRAY_ICON_PNG_BASE64 } from './trayIcon';

const logger = pino({ level: 'info', base: { part: 'shell' } });
const rendererIndex = join(import.meta.dirname, '../renderer/index.html');
const appUrl = rendererUrl({ packaged: app.isPackaged, devServerUrl: process.env['ELECTRON_RENDERER_URL'], indexFileUrl: pathToFileURL(rendererIndex).href });

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
    session.defaultSession.setPermissionRequestHandler((_wc, permission, callback) => callback(isPermissionGranted(permission)));
    session.defaultSession.setPermissionCheckHandler((_wc, permission) => isPermissionGranted(permission));
    session.defaultSession.webRequest.onHeadersReceived((details, callback) =>
      callback({ responseHeaders: withContentSecurityPolicy(details.responseHeaders) }),
    );

    core = startCore();
    ipcMain.handle(INVOKE_CHANNEL, async (event, method: unknown, params: unknown) => {
      const frame = event.senderFrame;
      if (!isTrustedIpcSender({ frameUrl: frame?.url ?? null, isMainFrame: !!frame && frame === event.sender.mainFrame }, appUrl)) {
        logger.warn('refused IPC from an untrusted frame');
        return { ok: false, error: { code: 'FORBIDDEN', message: 'This window may not call the app.' } };
      }
      const call = parseInvokeArgs(method, params);
      if (!call) return { ok: false, error: { code: 'BAD_REQUEST', message: 'Unknown method.' } };
      return core!.invoke(event.sender.id, call.method, call.params);
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
