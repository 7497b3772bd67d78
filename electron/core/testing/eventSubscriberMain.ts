// A local HTTPS event subscriber in a process of its own (the benchmark: its TLS work must not
// share the core's thread). Sends `{ url, cert }` once listening, then answers `count` messages.
import { startEventSubscriber } from './eventSubscriber';

const sub = await startEventSubscriber();
process.send?.({ url: sub.url, cert: sub.cert });
process.on('message', (m: unknown) => {
  if (m === 'count') process.send?.({ count: sub.received.length });
  if (m === 'stop') void sub.close().then(() => process.exit(0));
});
