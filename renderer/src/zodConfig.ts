import { z } from 'zod';

// zod compiles fast parsers with `new Function` unless told not to, and probes for it on the first
// parse; our CSP forbids eval and must stay so. Imported first by main.tsx, before any schema runs.
z.config({ jitless: true });
// The first of our code to run: how long the bundle took to arrive, parse and start (for the benchmark).
performance.mark('clinic-inbox:script');
