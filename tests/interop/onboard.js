// An independent onboarding client (Node's pure-JavaScript gRPC, @grpc/grpc-js): sends a
// node's identity on OnboardNodeStream until it is ONBOARDED, then prints the reply as JSON.
// Usage: node onboard.js HOST:PORT UUID SERIAL MAC IP
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [target, uuid, serialnum, macId, hostIp] = process.argv.slice(2);
const definition = loader.loadSync(path.join(__dirname, 'onboarding_client.proto'), { keepCase: true, enums: String, defaults: true });
const api = grpc.loadPackageDefinition(definition).onboardingmgr.v1;
const client = new api.NonInteractiveOnboardingService(target, grpc.credentials.createInsecure());

const deadline = new Date(Date.now() + 20000);
const stream = client.OnboardNodeStream({ deadline });
const replies = [];
let attempts = 0;
const ask = () => {
  attempts += 1;
  stream.write({ uuid, serialnum, mac_id: macId, host_ip: hostIp });
};
stream.on('data', (reply) => {
  replies.push(reply);
  if (reply.node_state !== 'NODE_STATE_ONBOARDED') setTimeout(ask, 200);
});
stream.on('error', (err) => {
  console.error(`onboard.js: ${err.code} ${err.details}`);
  process.exit(1);
});
stream.on('end', () => {
  const last = replies[replies.length - 1];
  console.log(JSON.stringify({ attempts, states: replies.map((r) => r.node_state), client_id: last && last.client_id,
    secret_length: last ? last.client_secret.length : 0, project_id: last && last.project_id }));
  stream.end();
  client.close();
});
ask();
