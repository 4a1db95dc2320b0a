// An independent client of edgeprov's workflow stream (@grpc/grpc-js + @grpc/proto-loader,
// npm): opens edgeprov.v1.WorkflowService/Run with a bearer token, says hello, prints the
// instance of the workflow it receives ("workflow=ID"), then reports on OTHER_INSTANCE and
// prints how the stream ended ("code=N details").
// Usage: node workflow_call.mjs PROTO_DIR HOST:PORT CA.pem TOKEN OTHER_INSTANCE
import fs from 'node:fs';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [protoDir, target, caFile, token, other] = process.argv.slice(2);
const definition = protoLoader.loadSync('edgeprov/v1/workflow.proto', { includeDirs: [protoDir], enums: String });
const { WorkflowStreamRequest, WorkflowStreamResponse } = grpc.loadPackageDefinition(definition).edgeprov.v1;
const client = new grpc.Client(target, grpc.credentials.createSsl(fs.readFileSync(caFile)));
const metadata = new grpc.Metadata();
metadata.set('authorization', `Bearer ${token}`);
const call = client.makeBidiStreamRequest(
  '/edgeprov.v1.WorkflowService/Run',
  (m) => WorkflowStreamRequest.serialize(m),
  (b) => WorkflowStreamResponse.deserialize(b),
  metadata,
  { deadline: Date.now() + 15000 },
);
call.on('data', (resp) => {
  console.log(`workflow=${resp.workflow.instanceId}`);
  call.write({ report: { instanceId: other, generation: resp.workflow.generation, index: 0, state: 'ACTION_STATE_RUNNING', message: 'x' } });
});
call.on('error', (err) => { console.log(`code=${err.code} ${err.details}`); client.close(); });
call.on('end', () => client.close());
call.write({ hello: {} });
