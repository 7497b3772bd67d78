#!/usr/bin/env node
// `npm run icons [-- OUT_DIR]`: every app icon from build/icon.svg — the Linux PNG set
// (build/icons/NxN.png and build/icon.png), the Windows build/icon.ico and the macOS build/icon.icns.
// Rasterised by rsvg-convert (Debian's librsvg2-bin); the .ico and .icns are written here around
// those PNGs (both formats hold PNG images directly). The icons test runs this and compares bytes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
export const SOURCE = join(root, 'build', 'icon.svg');
export const LINUX_SIZES = [16, 24, 32, 48, 64, 128, 256, 512, 1024];
const ICO_SIZES = [16, 24, 32, 48, 64, 128, 256];
/** ICNS PNG types: https://en.wikipedia.org/wiki/Apple_Icon_Image_format */
const ICNS_TYPES = [
  ['icp4', 16],
  ['icp5', 32],
  ['icp6', 64],
  ['ic07', 128],
  ['ic08', 256],
  ['ic09', 512],
  ['ic10', 1024],
  ['ic11', 32],
  ['ic12', 64],
  ['ic13', 256],
  ['ic14', 512],
];

export function rasterise(size) {
  try {
    return execFileSync('rsvg-convert', ['--width', String(size), '--height', String(size), '--format', 'png', SOURCE], { maxBuffer: 32 * 1024 * 1024 });
  } catch (err) {
    if (err.code === 'ENOENT') throw new Error('rsvg-convert is missing: apt-get install librsvg2-bin');
    throw err;
  }
}

export function ico(pngs) {
  const header = Buffer.alloc(6);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2);
  header.writeUInt16LE(pngs.length, 4);
  const entries = [];
  let offset = 6 + 16 * pngs.length;
  for (const { size, png } of pngs) {
    const e = Buffer.alloc(16);
    e.writeUInt8(size >= 256 ? 0 : size, 0);
    e.writeUInt8(size >= 256 ? 0 : size, 1);
    e.writeUInt8(0, 2);
    e.writeUInt8(0, 3);
    e.writeUInt16LE(1, 4);
    e.writeUInt16LE(32, 6);
    e.writeUInt32LE(png.length, 8);
    e.writeUInt32LE(offset, 12);
    offset += png.length;
    entries.push(e);
  }
  return Buffer.concat([header, ...entries, ...pngs.map((p) => p.png)]);
}

export function icns(chunks) {
  const parts = chunks.map(({ type, png }) => {
    const head = Buffer.alloc(8);
    head.write(type, 0, 'ascii');
    head.writeUInt32BE(png.length + 8, 4);
    return Buffer.concat([head, png]);
  });
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'ascii');
  head.writeUInt32BE(8 + parts.reduce((n, p) => n + p.length, 0), 4);
  return Buffer.concat([head, ...parts]);
}

/** Writes every icon into `out` (default build/) and returns the files written, relative to it. */
export function makeIcons(out = join(root, 'build')) {
  const png = new Map();
  const at = (size) => {
    if (!png.has(size)) png.set(size, rasterise(size));
    return png.get(size);
  };
  mkdirSync(join(out, 'icons'), { recursive: true });
  const written = [];
  for (const size of LINUX_SIZES) {
    writeFileSync(join(out, 'icons', `${size}x${size}.png`), at(size));
    written.push(`icons/${size}x${size}.png`);
  }
  writeFileSync(join(out, 'icon.png'), at(512));
  writeFileSync(join(out, 'icon.ico'), ico(ICO_SIZES.map((size) => ({ size, png: at(size) }))));
  writeFileSync(join(out, 'icon.icns'), icns(ICNS_TYPES.map(([type, size]) => ({ type, png: at(size) }))));
  written.push('icon.png', 'icon.ico', 'icon.icns');
  return written;
}

if (process.argv[1] === import.meta.filename) {
  const files = makeIcons(process.argv[2]);
  process.stdout.write(`icons: wrote ${files.length} files from build/icon.svg\n`);
}
