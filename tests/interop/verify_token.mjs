// An independent JWT verifier (the jose library, npm): fetches the JWKS over HTTPS and checks
// a token's ES256 signature, issuer and audience. Prints the claims; exits 1 when refused.
// Usage: NODE_EXTRA_CA_CERTS=ca.pem node verify_token.mjs JWKS_URL TOKEN ISSUER AUDIENCE
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, token, issuer, audience] = process.argv.slice(2);
try {
  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(jwksUrl)), {
    issuer,
    audience,
    algorithms: ['ES256'],
  });
  console.log(JSON.stringify({ alg: protectedHeader.alg, sub: payload.sub, aud: payload.aud }));
} catch (err) {
  console.error(`refused: ${err.code || err.name}`);
  process.exit(1);
}
