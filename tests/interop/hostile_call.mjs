// A node that sends arbitrary bytes (@grpc/grpc-js, npm): the text fields are encoded by hand,
// since protobuf libraries turn a JS string into valid UTF-8 and so cannot send 0xff or a
// lone continuation byte. Prints "code=<gRPC status> <details>" of each call.
//   status HEX                 NodeService/ReportStatus with the status bytes HEX
//   report MESSAGE_HEX LINE_HEX  WorkflowService/Run: hello, then a RUNNING report on action 0
//                              of the workflow received ("workflow=ID") with that message and
//                              log line (an empty HEX leaves the field out)
// Usage: node hostile_call.mjs PROTO_DIR HOST:PORT CA.pem TOKEN status|report HEX [HEX]
import { bytesField, connect, varintField } from './node_wire.mjs';

const [protoDir, target, caFile, token, mode, ...hex] = process.argv.slice(2);
const { client, metadata, load } = connect(protoDir, target, caFile, token);

if (mode === 'status') {
  const { ReportStatusResponse } = load('edgeprov/v1/node.proto');
  client.makeUnaryRequest(
    '/edgeprov.v1.NodeService/ReportStatus',
    (bytes) => bytes,
    (bytes) => ReportStatusResponse.deserialize(bytes),
    bytesField(1, Buffer.from(hex[0], 'hex')),
    metadata,
    { deadline: Date.now() + 10000 },
    (err, reply) => {
      console.log(err ? `code=${err.code} ${err.details}` : `code=0 ${JSON.stringify(reply)}`);
      client.close();
    },
  );
} else if (mode === 'report') {
  const { WorkflowStreamResponse } = load('edgeprov/v1/workflow.proto');
  const call = client.makeBidiStreamRequest(
    '/edgeprov.v1.WorkflowService/Run',
    (bytes) => bytes,
    (bytes) => WorkflowStreamResponse.deserialize(bytes),
    metadata,
    { deadline: Date.now() + 15000 },
  );
  call.on('data', (resp) => {
    const w = resp.workflow;
    console.log(`workflow=${w.instanceId}`);
    const parts = [bytesField(1, Buffer.from(w.instanceId)), varintField(2, w.generation), varintField(4, 2 /* RUNNING */),
      varintField(5, 1)];
    if (hex[0]) parts.push(bytesField(8, Buffer.from(hex[0], 'hex')));
    if (hex[1]) parts.push(bytesField(9, Buffer.from(hex[1], 'hex')));
    call.write(bytesField(2, Buffer.concat(parts)));
    call.end();
  });
  call.on('error', (err) => { console.log(`code=${err.code} ${err.details}`); client.close(); });
  call.on('status', (s) => { if (s.code === 0) console.log('code=0 '); });
  call.on('end', () => client.close());
  call.write(bytesField(1, Buffer.alloc(0))); // hello
} else {
  console.log(`unknown mode ${mode}`);
  process.exit(2);
}
