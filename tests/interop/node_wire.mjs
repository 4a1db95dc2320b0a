// Shared by the hand-encoding node clients (hostile_call.mjs, flood_call.mjs): a @grpc/grpc-js
// client over TLS carrying a node's bearer token, the .proto loader, and the few protobuf
// encoders they need to send bytes a protobuf library would refuse or normalise.
import fs from 'node:fs';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

// connect(PROTO_DIR, HOST:PORT, CA.pem, TOKEN) -> { client, metadata, load(file) }
export const connect = (protoDir, target, caFile, token) => {
  const load = (file) => grpc.loadPackageDefinition(protoLoader.loadSync(file, { includeDirs: [protoDir], enums: String })).edgeprov.v1;
  const client = new grpc.Client(target, grpc.credentials.createSsl(fs.readFileSync(caFile)));
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return { client, metadata, load };
};

export const varint = (n) => {
  const out = [];
  for (; n > 0x7f; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Buffer.from(out);
};
export const bytesField = (field, bytes) => Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
export const varintField = (field, n) => Buffer.concat([varint(field << 3), varint(n)]);
