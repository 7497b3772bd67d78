import { createHash } from 'node:crypto';
import type { Manifest } from './manifest';

/** Semantic versions: numeric parts, then a release above any of its prereleases (`1.2.0-rc.1` < `1.2.0`). */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const [core, pre] = v.split('-', 2) as [string, string | undefined];
    return { nums: core.split('.').map(Number), pre: pre ? pre.split('.') : [] };
  };
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre.length === 0 || y.pre.length === 0) return x.pre.length === y.pre.length ? 0 : x.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn && Number(p) !== Number(q)) return Math.sign(Number(p) - Number(q));
    if (pn !== qn) return pn ? -1 : 1;
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

/**
 * The installation's place in a staged rollout, in [0, 1): derived from its installation id, so
 * it stays the same across restarts and reinstalls over the same data, and differs per desk.
 */
export function rolloutBucket(installationId: string): number {
  return createHash('sha256').update(`clinic-inbox rollout\n${installationId}`).digest().readUInt32BE(0) / 2 ** 32;
}

/** A manifest without `stagingPercentage` is for everyone; an unreadable one for nobody (fail closed). */
export function inRollout(bucket: number, stagingPercentage: Manifest['stagingPercentage']): boolean {
  if (stagingPercentage === null) return true;
  if (stagingPercentage === 'invalid') return false;
  return bucket * 100 < stagingPercentage;
}

export type UpdateDecision = { offer: true; version: string; downgrade: boolean } | { offer: false; reason: 'not_newer' | 'downgrade_refused' | 'outside_rollout' };

/**
 * Whether a verified manifest is offered to this desk: newer than what runs and inside the
 * rollout; or exactly the older version the policy names (`allowedVersion`), the one downgrade.
 */
export function decideUpdate(input: { current: string; manifest: Manifest; bucket: number; allowedVersion: string | null }): UpdateDecision {
  const { manifest } = input;
  const cmp = compareVersions(manifest.version, input.current);
  if (cmp === 0) return { offer: false, reason: 'not_newer' };
  if (cmp < 0) return input.allowedVersion !== null && manifest.version === input.allowedVersion ? { offer: true, version: manifest.version, downgrade: true } : { offer: false, reason: 'downgrade_refused' };
  if (!inRollout(input.bucket, manifest.stagingPercentage)) return { offer: false, reason: 'outside_rollout' };
  return { offer: true, version: manifest.version, downgrade: false };
}

/** The manifest file a channel reads on a platform (electron-updater's naming). */
export function manifestName(channel: 'stable' | 'early', platform: NodeJS.Platform): string {
  const base = channel === 'stable' ? 'latest' : 'early';
  return platform === 'linux' ? `${base}-linux.yml` : platform === 'darwin' ? `${base}-mac.yml` : `${base}.yml`;
}

export const DAY_MS = 86_400_000;

/**
 * When a downloaded, verified update installs: at the next quit by default; now when an admin
 * clicks "Restart to update"; or, once the policy's deferral limit has passed, as soon as no one is
 * working at the desk (every window signed out or locked), never in the middle of a reply.
 */
export function installDecision(input: { downloadedAt: number; now: number; deferralDays: number | null; adminAsked: boolean; deskIdle: boolean }): 'now' | 'on_quit' {
  if (input.adminAsked) return 'now';
  if (input.deferralDays === null) return 'on_quit';
  return input.now >= input.downloadedAt + input.deferralDays * DAY_MS && input.deskIdle ? 'now' : 'on_quit';
}

export function installDeadline(downloadedAt: number, deferralDays: number | null): number | null {
  return deferralDays === null ? null : downloadedAt + deferralDays * DAY_MS;
}
