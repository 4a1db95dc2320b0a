// Mints an ES256 JWT with the jose library (npm) from a PEM private key: used to present
// tokens that are correctly signed but wrong in one claim (expired, another issuer).
// Usage: node sign_token.mjs KEY.pem KID ISSUER SUBJECT AUDIENCE EXPIRES_AT(Unix seconds)
import fs from 'node:fs';
import { SignJWT, importPKCS8 } from 'jose';

const [keyFile, kid, iss, sub, aud, exp] = process.argv.slice(2);
const key = await importPKCS8(fs.readFileSync(keyFile, 'utf8'), 'ES256');
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({})
  .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
  .setIssuer(iss)
  .setSubject(sub)
  .setAudience(aud)
  .setIssuedAt(Math.min(now, Number(exp) - 60))
  .setExpirationTime(Number(exp))
  .sign(key);
console.log(token);
