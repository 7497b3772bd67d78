// Where a server thread's CPU goes by stage, from a `perf record -e cpu-clock -g` file of a process
// started with `--perf-basic-prof` (so JavaScript frames are named). CPU samples, unlike V8's
// wall-clock profile, are not charged the time a thread sits descheduled (after a `writev` wakes
// wrk, say). Each sample goes to the first stage its stack names; µs = sampled time / requests.
import { execFileSync } from 'node:child_process';

const STAGES: [string, RegExp][] = [
  ['GC', /Heap::CollectGarbage|Scavenger|MarkCompact|IncrementalMarking|Heap::PerformGarbageCollection|ConcurrentMarking|Sweeper/],
  ['200: writev', /Writev|__GI___writev|DoTryWrite/],
  ['hand-off: post', /MessagePort::PostMessage|JS:\S*postMessage/],
  ['hand-off: results', /MessagePort::ReceiveMessage|Deserialize/],
  ['verify', /verifyMetaSignature/],
  ['nesting scan', /nestingDepthExceeds/],
  ['item digests', /itemsOf|canonicalJson/],
  ['parse', /parseWebhook|JsonParse/],
  ['route, meta plaintext', /routeWebhook|metaPlaintext|phoneNumberIdsOf|isRoutableWebhook/],
  ['prom-client', /prom-client/],
  ['200: end()', /sendOk|JS:\S*end node:_http_outgoing/],
  ['llhttp + request start', /llhttp|parserOn|Parser::Execute|Parser::on_/],
  // The relay's compiled files (dist/relay/, or a base build's copy) and the bare server's inline source.
  ['handler, other', /\/relay\/[\w-]+\.js|\[eval1\]/],
  ['promise jobs, ticks', /RunMicrotasks|processTicksAndRejections/],
];

/** µs per request by stage for the thread `tid` (the main thread's tid is the pid). */
export function perfStages(file: string, tid: number, requests: number): { stage: string; us: number }[] {
  const out = execFileSync('perf', ['script', '-i', file, '--tid', String(tid), '-F', 'tid,period,ip,sym'], { maxBuffer: 1 << 30, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const ns = new Map<string, number>();
  for (const block of out.split('\n\n')) {
    const lines = block.trim().split('\n');
    if (lines.length < 2) continue;
    const period = Number(lines[0]!.trim().split(/\s+/)[1]);
    const stack = lines.slice(1).join(';');
    const stage = STAGES.find(([, re]) => re.test(stack))?.[0] ?? 'event loop, kernel, other';
    ns.set(stage, (ns.get(stage) ?? 0) + period);
  }
  return [...ns].map(([stage, v]) => ({ stage, us: v / 1000 / Math.max(1, requests) })).sort((a, b) => b.us - a.us);
}
