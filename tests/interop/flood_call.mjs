// An enrolled node that floods the orchestrator with reports (security review finding 3),
// with @grpc/grpc-js (npm); the protobuf is encoded by hand as in hostile_call.mjs.
//   status COUNT PHASE TEXT   COUNT NodeService/ReportStatus calls (at most 64 in flight) with
//                             status TEXT and phase PHASE (0 Micro-OS, 1 installed OS)
//   progress COUNT LINES      WorkflowService/Run: COUNT RUNNING reports on action 0 of the
//                             workflow received (attempt 1, growing bytes_done), each with LINES
//                             log lines of about 100 bytes; at most 100 a stream: a stream the
//                             server ends (a refused report ends it) is opened again
// Prints one line of figures: "calls=N ok=N exhausted=N other=N ms=N" plus "retry_ms=N" (from
// the last RESOURCE_EXHAUSTED message), "streams=N" and "first_error=<code> <details>".
// Usage: node flood_call.mjs PROTO_DIR HOST:PORT CA.pem TOKEN status|progress ARGS...
import grpc from '@grpc/grpc-js';
import { bytesField, connect, varintField } from './node_wire.mjs';

const [protoDir, target, caFile, token, mode, ...args] = process.argv.slice(2);
const { client, metadata, load } = connect(protoDir, target, caFile, token);

const stats = { calls: 0, ok: 0, exhausted: 0, other: 0 };
let retryMs = -1, firstError = '';
const started = Date.now();
const noteError = (err) => {
  if (err.code === grpc.status.RESOURCE_EXHAUSTED) {
    stats.exhausted++;
    const m = /retry in (\d+) ms/.exec(err.details);
    if (m) retryMs = Number(m[1]);
  } else {
    stats.other++;
  }
  if (!firstError) firstError = `${err.code} ${err.details}`;
};
const report = (extra) => {
  console.log(`calls=${stats.calls} ok=${stats.ok} exhausted=${stats.exhausted} other=${stats.other} ` +
    `ms=${Date.now() - started} retry_ms=${retryMs}${extra} first_error=${firstError}`);
  client.close();
};

if (mode === 'status') {
  const [count, phase, text] = [Number(args[0]), Number(args[1]), args[2]];
  const { ReportStatusResponse } = load('edgeprov/v1/node.proto');
  const request = Buffer.concat([bytesField(1, Buffer.from(text)), varintField(2, phase)]);
  let next = 0, done = 0;
  const one = () => {
    if (next >= count) return;
    next++;
    stats.calls++;
    client.makeUnaryRequest('/edgeprov.v1.NodeService/ReportStatus', (b) => b, (b) => ReportStatusResponse.deserialize(b),
      request, metadata, { deadline: Date.now() + 30000 }, (err) => {
        if (err) noteError(err); else stats.ok++;
        if (++done === count) report('');
        else one();
      });
  };
  for (let i = 0; i < 64; i++) one();
} else if (mode === 'progress') {
  const [count, lines] = [Number(args[0]), Number(args[1])];
  const { WorkflowStreamResponse } = load('edgeprov/v1/workflow.proto');
  let streams = 0;
  const logLine = (i, k) => Buffer.from(`flood line ${k} of report ${i}: ${'x'.repeat(72)}`);
  const stream = () => {
    if (stats.calls >= count) { report(` streams=${streams}`); return; }
    streams++;
    let ended = false;
    const call = client.makeBidiStreamRequest('/edgeprov.v1.WorkflowService/Run', (b) => b,
      (b) => WorkflowStreamResponse.deserialize(b), metadata, { deadline: Date.now() + 30000 });
    call.on('data', (resp) => {
      const w = resp.workflow;
      for (let n = 0; n < 100 && stats.calls < count; n++) {
        const i = stats.calls++;
        const parts = [bytesField(1, Buffer.from(w.instanceId)), varintField(2, w.generation), varintField(4, 2 /* RUNNING */),
          varintField(5, 1), varintField(6, i + 1), varintField(7, count), bytesField(8, Buffer.from(`streaming ${i + 1}/${count}`))];
        for (let k = 0; k < lines; k++) parts.push(bytesField(9, logLine(i, k)));
        call.write(bytesField(2, Buffer.concat(parts)));
      }
      call.end();
    });
    const next = () => { if (!ended) { ended = true; stream(); } };
    call.on('error', (err) => { noteError(err); next(); });
    call.on('status', (s) => { if (s.code === 0) { stats.ok++; next(); } });
    call.on('end', () => {});
    call.write(bytesField(1, Buffer.alloc(0))); // hello
  };
  stream();
} else {
  console.log(`unknown mode ${mode}`);
  process.exit(2);
}
