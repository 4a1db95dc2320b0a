// An independent client of edgeprov's node API (@grpc/grpc-js + @grpc/proto-loader, npm):
// calls edgeprov.v1.NodeService/ReportStatus over TLS with a bearer token and prints
// "code=<gRPC status> <details>" and, on success, the reply as JSON.
// Usage: node node_call.mjs PROTO_DIR HOST:PORT CA.pem TOKEN|- STATUS
import fs from 'node:fs';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [protoDir, target, caFile, token, status] = process.argv.slice(2);
const definition = protoLoader.loadSync('edgeprov/v1/node.proto', { includeDirs: [protoDir], enums: String });
const { ReportStatusRequest, ReportStatusResponse } = grpc.loadPackageDefinition(definition).edgeprov.v1;
const client = new grpc.Client(target, grpc.credentials.createSsl(fs.readFileSync(caFile)));
const metadata = new grpc.Metadata();
if (token !== '-') metadata.set('authorization', `Bearer ${token}`);
client.makeUnaryRequest(
  '/edgeprov.v1.NodeService/ReportStatus',
  (message) => ReportStatusRequest.serialize(message),
  (bytes) => ReportStatusResponse.deserialize(bytes),
  { status },
  metadata,
  { deadline: Date.now() + 10000 },
  (err, reply) => {
    if (err) console.log(`code=${err.code} ${err.details}`);
    else console.log(`code=0 ${JSON.stringify(reply)}`);
    client.close();
  },
);
