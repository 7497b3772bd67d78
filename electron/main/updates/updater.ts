import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { app, net, powerMonitor } from 'electron';
import electronUpdater from 'electron-updater';
import type { Logger } from 'pino';
import { checkForUpdate } from './check';
import { installDeadline, installDecision } from './decide';
import { checkDownloadedFile, type Manifest } from './manifest';
import { RELEASE_PUBLIC_KEYS, updateGate } from './releaseKey';

/** Written by the core (policy applied): what the updater checks and where. */
interface EffectiveUpdateSettings {
  url: string | null;
  channel: 'stable' | 'early';
  allowedVersion: string | null;
  deferralDays: number | null;
  installationId: string;
}

const CHECK_EVERY_MS = 4 * 60 * 60_000;
/** No keyboard or mouse for this long: nobody is in the middle of a reply. */
const DESK_IDLE_SECONDS = 15 * 60;

function sha512OfFile(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    const hash = createHash('sha512');
    createReadStream(path)
      .on('data', (c) => hash.update(c))
      .on('error', fail)
      .on('end', () => ok(hash.digest('base64')));
  });
}

/**
 * The thin wiring around electron-updater. Every decision is in `check.ts`/`decide.ts`/`manifest.ts`
 * (tested in Node); here we only fetch, hand a verified manifest's version to electron-updater,
 * check the downloaded file against that manifest, and install at quit (or when the deferral limit
 * passed on an idle desk). electron-updater never installs on its own: `autoInstallOnAppQuit` is
 * switched on only after our checks pass.
 */
export function startUpdater(deps: { dataDir: string; logger: Logger }): { stop(): void; restartToUpdate(): void } {
  const { autoUpdater } = electronUpdater;
  const { logger } = deps;
  autoUpdater.autoDownload = false;
  autoUpdater.autoInstallOnAppQuit = false;
  autoUpdater.disableWebInstaller = true;
  autoUpdater.logger = null;
  let verified: Manifest | null = null;
  let ready: { downloadedAt: number; deferralDays: number | null } | null = null;

  const writeState = (state: { phase: string; version?: string | null; problem?: string | null; installBy?: number | null }): void => {
    const full = { phase: state.phase, version: state.version ?? null, checkedAt: Date.now(), problem: state.problem ?? null, installBy: state.installBy ?? null };
    try {
      writeFileSync(join(deps.dataDir, 'update-state.json'), `${JSON.stringify(full)}\n`, { mode: 0o600 });
    } catch {
      // the status page then shows the last state it knew
    }
  };

  const readSettings = (): EffectiveUpdateSettings | null => {
    try {
      return JSON.parse(readFileSync(join(deps.dataDir, 'update-settings.json'), 'utf8')) as EffectiveUpdateSettings;
    } catch {
      return null;
    }
  };

  async function check(): Promise<void> {
    const settings = readSettings();
    const gate = updateGate({ packaged: app.isPackaged, publicKeys: RELEASE_PUBLIC_KEYS, url: settings?.url ?? null });
    if (gate !== 'check' || !settings?.url) return writeState({ phase: gate === 'check' ? 'idle' : gate, problem: gate === 'no_release_key' ? 'NO_RELEASE_KEY' : null });
    if (ready) return;
    writeState({ phase: 'checking' });
    const result = await checkForUpdate({
      baseUrl: settings.url,
      channel: settings.channel,
      platform: process.platform,
      current: app.getVersion(),
      installationId: settings.installationId,
      allowedVersion: settings.allowedVersion,
      publicKeys: RELEASE_PUBLIC_KEYS,
      fetch: async (url) => {
        const res = await net.fetch(url, { headers: { 'Cache-Control': 'no-cache' } });
        return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
      },
    });
    if (!result.ok) {
      logger.warn({ code: result.code }, 'update refused or unavailable');
      return writeState({ phase: result.code.startsWith('MANIFEST') ? 'refused' : 'error', problem: result.code });
    }
    if (!result.decision.offer) return writeState({ phase: 'up_to_date', version: result.manifest.version });
    verified = result.manifest;
    const version = verified.version;
    autoUpdater.setFeedURL({ provider: 'generic', url: settings.url, channel: settings.channel === 'stable' ? 'latest' : 'early' });
    // Setting the channel turns allowDowngrade on; it is set after, from our decision only.
    autoUpdater.allowDowngrade = result.decision.downgrade;
    autoUpdater.isUserWithinRollout = () => true; // decided above, with our per-installation bucket
    autoUpdater.isUpdateSupported = (info) => info.version === version;
    writeState({ phase: 'downloading', version });
    await autoUpdater.checkForUpdates();
    await autoUpdater.downloadUpdate();
  }

  autoUpdater.on('update-downloaded', (info: { version: string; downloadedFile: string }) => {
    void (async () => {
      const manifest = verified;
      const outcome = manifest && info.version === manifest.version ? checkDownloadedFile(manifest, info.downloadedFile, await sha512OfFile(info.downloadedFile)) : { ok: false as const, code: 'VERSION_MISMATCH' };
      if (!outcome.ok) {
        logger.error({ code: outcome.code }, 'downloaded update refused');
        return writeState({ phase: 'refused', version: info.version, problem: outcome.code });
      }
      const deferralDays = readSettings()?.deferralDays ?? null;
      ready = { downloadedAt: Date.now(), deferralDays };
      autoUpdater.autoInstallOnAppQuit = true;
      writeState({ phase: 'ready', version: info.version, installBy: installDeadline(ready.downloadedAt, deferralDays) });
    })();
  });
  autoUpdater.on('error', (err: Error) => {
    logger.warn({ name: err.name }, 'update failed');
    writeState({ phase: 'error', problem: 'UPDATE_FAILED' });
  });

  const run = () => void check().catch(() => writeState({ phase: 'error', problem: 'UPDATE_FAILED' }));
  // A build that pins no release key says so on the status page at once, not after the first check.
  if (updateGate({ packaged: app.isPackaged, publicKeys: RELEASE_PUBLIC_KEYS, url: null }) === 'no_release_key') {
    logger.warn({ code: 'NO_RELEASE_KEY' }, 'updates off: no release key pinned in this build');
    run();
  }
  const first = setTimeout(run, 30_000);
  const every = setInterval(run, CHECK_EVERY_MS);
  // An admin's "Restart to update" arrives from the core as a file in the data folder.
  const restartFile = join(deps.dataDir, 'update-restart-request');
  const asked = setInterval(() => {
    if (!existsSync(restartFile)) return;
    rmSync(restartFile, { force: true });
    if (ready && installDecision({ ...ready, now: Date.now(), adminAsked: true, deskIdle: false }) === 'now') autoUpdater.quitAndInstall(true, true);
  }, 3_000);
  const deadline = setInterval(() => {
    if (!ready) return;
    const when = installDecision({ ...ready, now: Date.now(), adminAsked: false, deskIdle: powerMonitor.getSystemIdleTime() >= DESK_IDLE_SECONDS });
    if (when === 'now') autoUpdater.quitAndInstall(true, true);
  }, 10 * 60_000);
  return {
    stop() {
      clearTimeout(first);
      clearInterval(every);
      clearInterval(deadline);
      clearInterval(asked);
    },
    restartToUpdate() {
      if (ready) autoUpdater.quitAndInstall(true, true);
    },
  };
}
