// A Keycloak stand-in for the auth-keycloak plugin's integration tests. Keycloak itself
// cannot run here, so this one Node.js process plays one Keycloak realm over HTTPS:
//
//  * The OpenID Connect side is npm's oidc-provider (a certified OpenID Connect provider
//    written by someone else), mounted so that its paths are Keycloak's:
//      issuer     https://127.0.0.1:PORT/realms/REALM
//      discovery  GET  /realms/REALM/.well-known/openid-configuration
//      token      POST /realms/REALM/protocol/openid-connect/token
//      JWKS       GET  /realms/REALM/protocol/openid-connect/certs
//    Only the client-credentials grant is used (client_secret_basic and client_secret_post).
//    Access tokens are JWTs signed RS256 with a kid published at /certs, carrying the claims
//    a Keycloak service-account token carries (iss, sub, aud, exp, iat, jti, typ "Bearer",
//    azp, client_id, scope, realm_access, resource_access, ...). As in Keycloak, aud lists
//    the value of each "oidc-audience-mapper" protocol mapper on the client (config
//    "included.custom.audience") and then "account" (Keycloak's "audience resolve" for the
//    account roles every service account has); one audience is written as a string, several
//    as an array, so a client without a mapper gets "aud":"account". Token errors keep
//    oidc-provider's codes (RFC 6749: a wrong secret is invalid_client, 401) with
//    Keycloak's descriptions.
//
//  * The Admin REST side is NOT Keycloak code: it is a contract written from Keycloak's
//    documented Admin REST API (ClientsResource / ClientResource, ClientRepresentation,
//    CredentialRepresentation, ProtocolMapperRepresentation), implementing only:
//      POST   /admin/realms/REALM/clients                    201 + Location | 400 | 409
//      GET    /admin/realms/REALM/clients[?clientId=X]       200 [ClientRepresentation]
//      GET    /admin/realms/REALM/clients/{id}               200 ClientRepresentation | 404
//      DELETE /admin/realms/REALM/clients/{id}               204 | 404
//      GET    /admin/realms/REALM/clients/{id}/client-secret 200 CredentialRepresentation
//      POST   /admin/realms/REALM/clients/{id}/client-secret 200 CredentialRepresentation (new)
//    Every admin call needs "Authorization: Bearer <access token>" issued by this provider
//    (RS256 signature against the provider's own key, issuer, expiry) to a client holding
//    the realm-management "manage-clients" role, which only --admin-client-id has:
//    401 {"error":"HTTP 401 Unauthorized"} without a valid token, 403
//    {"error":"HTTP 403 Forbidden"} for any other client, 404 {"error":"Realm not found."}
//    for another realm. Anything else under /admin answers 501.
//
// Clients live in one in-memory map that both sides read: a client created through the
// Admin API can get tokens at once, a deleted one cannot, a regenerated secret replaces the
// old one at once.
//
// Test controls, not Keycloak's (only on this loopback server):
//   POST /stand-in/settings {"jwksDelayMs": N, "tokenTtl": S}   200 {"jwksDelayMs":..,"tokenTtl":..}
// jwksDelayMs holds each JWKS (/certs) answer back N ms (a slow Keycloak; "delaying certs"
// is logged when one starts waiting); tokenTtl is the lifetime of tokens issued from then on.
//
// Usage: node keycloak_server.mjs --cert CERT.pem --key KEY.pem --realm REALM
//          --admin-client-id ID --admin-secret-file FILE --port-file FILE [--token-ttl S]
// Listens on 127.0.0.1 on a free port, writes the port into --port-file (temp + rename)
// once ready, logs one line per request to stderr (method, path, status; never a query
// string, body, secret or token), and exits cleanly on SIGTERM or SIGINT.
import { randomBytes, randomInt, randomUUID, generateKeyPairSync, createHash } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import https from 'node:https';
import Provider, { errors } from 'oidc-provider';
import { createLocalJWKSet, jwtVerify } from 'jose';

// ---------------------------------------------------------------------------------------
// Command line
function usage(msg) {
  if (msg) process.stderr.write(`keycloak_server: ${msg}\n`);
  process.stderr.write('usage: node keycloak_server.mjs --cert CERT.pem --key KEY.pem --realm REALM '
    + '--admin-client-id ID --admin-secret-file FILE --port-file FILE [--token-ttl SECONDS]\n');
  process.exit(2);
}

const opts = { 'token-ttl': '300' };
{
  const argv = process.argv.slice(2);
  const known = new Set(['cert', 'key', 'realm', 'admin-client-id', 'admin-secret-file', 'port-file', 'token-ttl']);
  for (let i = 0; i < argv.length; i += 1) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2) : null;
    if (!name || !known.has(name)) usage(`unknown argument ${argv[i]}`);
    if (i + 1 >= argv.length) usage(`--${name} needs a value`);
    opts[name] = argv[i += 1];
  }
  for (const name of known) if (!opts[name]) usage(`--${name} is required`);
}
const REALM = opts.realm;
if (!/^[A-Za-z0-9._-]+$/.test(REALM)) usage('--realm must be letters, digits, ".", "_" or "-"');
let TOKEN_TTL = Number(opts['token-ttl']);
if (!Number.isInteger(TOKEN_TTL) || TOKEN_TTL <= 0) usage('--token-ttl must be a positive integer');
let JWKS_DELAY_MS = 0;
const ADMIN_CLIENT_ID = opts['admin-client-id'];
const ADMIN_SECRET = readFileSync(opts['admin-secret-file'], 'utf8').replace(/\r?\n$/, '');
if (!ADMIN_SECRET) usage('--admin-secret-file is empty');
const tls = { cert: readFileSync(opts.cert), key: readFileSync(opts.key) };

// ---------------------------------------------------------------------------------------
// The realm's clients: one map, written by the Admin API, read by oidc-provider's adapter.
const clientsById = new Map(); // internal uuid -> stored client
const clientByClientId = (clientId) => [...clientsById.values()].find((c) => c.clientId === clientId);

// Keycloak generates a client secret of 32 random alphanumerics.
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const newSecret = () => Array.from({ length: 32 }, () => ALNUM[randomInt(ALNUM.length)]).join('');

const DEFAULT_CLIENT_SCOPES = ['acr', 'basic', 'email', 'profile', 'roles', 'web-origins'];
const OPTIONAL_CLIENT_SCOPES = ['address', 'microprofile-jwt', 'offline_access', 'organization', 'phone'];
const ACCOUNT_ROLES = ['manage-account', 'manage-account-links', 'view-profile'];
const ADMIN_ROLES = ['manage-clients', 'query-clients', 'view-clients'];

const bool = (v, dflt) => (typeof v === 'boolean' ? v : dflt);
const stringMap = (obj) => Object.fromEntries(Object.entries(obj && typeof obj === 'object' && !Array.isArray(obj) ? obj : {})
  .filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, String(v)]));

// A stored client from a ClientRepresentation, with the defaults Keycloak fills in.
function storeClient(rep, { builtin = false } = {}) {
  const publicClient = bool(rep.publicClient, false);
  const c = {
    id: typeof rep.id === 'string' && rep.id && !clientsById.has(rep.id) ? rep.id : randomUUID(),
    clientId: rep.clientId,
    name: typeof rep.name === 'string' ? rep.name : undefined,
    description: typeof rep.description === 'string' ? rep.description : undefined,
    surrogateAuthRequired: bool(rep.surrogateAuthRequired, false),
    enabled: bool(rep.enabled, true),
    alwaysDisplayInConsole: bool(rep.alwaysDisplayInConsole, false),
    clientAuthenticatorType: typeof rep.clientAuthenticatorType === 'string' ? rep.clientAuthenticatorType : 'client-secret',
    secret: publicClient ? undefined : (typeof rep.secret === 'string' && rep.secret ? rep.secret : newSecret()),
    redirectUris: Array.isArray(rep.redirectUris) ? rep.redirectUris.map(String) : [],
    webOrigins: Array.isArray(rep.webOrigins) ? rep.webOrigins.map(String) : [],
    notBefore: 0,
    bearerOnly: bool(rep.bearerOnly, false),
    consentRequired: bool(rep.consentRequired, false),
    standardFlowEnabled: bool(rep.standardFlowEnabled, true),
    implicitFlowEnabled: bool(rep.implicitFlowEnabled, false),
    directAccessGrantsEnabled: bool(rep.directAccessGrantsEnabled, false),
    serviceAccountsEnabled: bool(rep.serviceAccountsEnabled, false),
    publicClient,
    frontchannelLogout: bool(rep.frontchannelLogout, false),
    protocol: typeof rep.protocol === 'string' ? rep.protocol : 'openid-connect',
    attributes: {
      ...stringMap(rep.attributes),
      realm_client: 'false',
      'client.secret.creation.time': String(Math.floor(Date.now() / 1000)),
    },
    fullScopeAllowed: bool(rep.fullScopeAllowed, true),
    nodeReRegistrationTimeout: -1,
    protocolMappers: (Array.isArray(rep.protocolMappers) ? rep.protocolMappers : [])
      .filter((m) => m && typeof m === 'object')
      .map((m) => ({
        id: typeof m.id === 'string' && m.id ? m.id : randomUUID(),
        name: typeof m.name === 'string' ? m.name : String(m.protocolMapper || 'mapper'),
        protocol: typeof m.protocol === 'string' ? m.protocol : 'openid-connect',
        protocolMapper: typeof m.protocolMapper === 'string' ? m.protocolMapper : '',
        consentRequired: bool(m.consentRequired, false),
        config: stringMap(m.config),
      })),
    // Not part of the representation: the service account user behind the client.
    serviceAccountUserId: randomUUID(),
    roles: builtin ? ADMIN_ROLES : [],
  };
  clientsById.set(c.id, c);
  return c;
}

// ClientRepresentation as GET /clients and GET /clients/{id} return it, in Keycloak's key
// order. Keycloak includes "secret" for a confidential client (it follows publicClient).
function representation(c) {
  const rep = { id: c.id, clientId: c.clientId };
  if (c.name !== undefined) rep.name = c.name;
  if (c.description !== undefined) rep.description = c.description;
  Object.assign(rep, {
    surrogateAuthRequired: c.surrogateAuthRequired,
    enabled: c.enabled,
    alwaysDisplayInConsole: c.alwaysDisplayInConsole,
    clientAuthenticatorType: c.clientAuthenticatorType,
  });
  if (!c.publicClient && c.secret !== undefined) rep.secret = c.secret;
  Object.assign(rep, {
    redirectUris: c.redirectUris,
    webOrigins: c.webOrigins,
    notBefore: c.notBefore,
    bearerOnly: c.bearerOnly,
    consentRequired: c.consentRequired,
    standardFlowEnabled: c.standardFlowEnabled,
    implicitFlowEnabled: c.implicitFlowEnabled,
    directAccessGrantsEnabled: c.directAccessGrantsEnabled,
    serviceAccountsEnabled: c.serviceAccountsEnabled,
    publicClient: c.publicClient,
    frontchannelLogout: c.frontchannelLogout,
    protocol: c.protocol,
    attributes: c.attributes,
    authenticationFlowBindingOverrides: {},
    fullScopeAllowed: c.fullScopeAllowed,
    nodeReRegistrationTimeout: c.nodeReRegistrationTimeout,
  });
  if (c.protocolMappers.length) rep.protocolMappers = c.protocolMappers;
  Object.assign(rep, {
    defaultClientScopes: DEFAULT_CLIENT_SCOPES,
    optionalClientScopes: OPTIONAL_CLIENT_SCOPES,
    access: { view: true, configure: true, manage: true },
  });
  return rep;
}

// The audiences Keycloak's oidc-audience-mapper adds to a client's access tokens.
function mapperAudiences(c) {
  const out = [];
  for (const m of c.protocolMappers) {
    if (m.protocolMapper !== 'oidc-audience-mapper' || m.config['access.token.claim'] === 'false') continue;
    for (const key of ['included.client.audience', 'included.custom.audience']) {
      const v = m.config[key];
      if (v && !out.includes(v)) out.push(v);
    }
  }
  return out;
}

// resource_access as Keycloak fills it for a service account: the account client's default
// roles for everyone, plus realm-management's client roles for the admin client.
function resourceAccess(c) {
  const ra = {};
  if (c.roles.length) ra['realm-management'] = { roles: c.roles };
  ra.account = { roles: ACCOUNT_ROLES };
  return ra;
}

// Keycloak's audience: the mapper audiences, then each client with roles in the token
// ("audience resolve"). One value is written as a string, several as an array.
function audienceOf(c) {
  const aud = [...mapperAudiences(c)];
  for (const k of Object.keys(resourceAccess(c))) if (!aud.includes(k)) aud.push(k);
  return aud.length === 1 ? aud[0] : aud;
}

storeClient({
  clientId: ADMIN_CLIENT_ID,
  secret: ADMIN_SECRET,
  serviceAccountsEnabled: true,
  standardFlowEnabled: false,
}, { builtin: true });

// ---------------------------------------------------------------------------------------
// oidc-provider adapter: Client reads the map above; every other model is in memory.
const store = new Map();
class Adapter {
  constructor(name) { this.name = name; }

  key(id) { return `${this.name}:${id}`; }

  async find(id) {
    if (this.name === 'Client') {
      const c = clientByClientId(id);
      if (!c || !c.enabled || c.publicClient || c.bearerOnly || !c.secret) return undefined;
      return {
        client_id: c.clientId,
        client_secret: c.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
      };
    }
    const entry = store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt && entry.expiresAt <= Date.now()) { store.delete(this.key(id)); return undefined; }
    return entry.payload;
  }

  async upsert(id, payload, expiresIn) {
    store.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
  }

  async findByUid(uid) {
    for (const [k, e] of store) if (k.startsWith(`${this.name}:`) && e.payload.uid === uid) return e.payload;
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [k, e] of store) if (k.startsWith(`${this.name}:`) && e.payload.userCode === userCode) return e.payload;
    return undefined;
  }

  async consume(id) {
    const e = store.get(this.key(id));
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
  }
}

// ---------------------------------------------------------------------------------------
// The realm's signing key: RSA 2048, RS256, with a kid.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateJwk = privateKey.export({ format: 'jwk' });
const KID = createHash('sha256').update(privateJwk.n).digest('base64url').slice(0, 43);
const signingJwk = { ...privateJwk, kid: KID, alg: 'RS256', use: 'sig' };
const publicJwks = createLocalJWKSet({ keys: [{ kty: 'RSA', n: privateJwk.n, e: privateJwk.e, kid: KID, alg: 'RS256', use: 'sig' }] });

const SCOPES = ['openid', 'profile', 'email', 'roles', 'web-origins', 'acr', 'basic', 'address', 'phone',
  'offline_access', 'microprofile-jwt', 'organization'];
const RESOURCE_PREFIX = 'urn:keycloak-stand-in:client:';
// The scope Keycloak writes for a service account: its default scopes that go into the
// token (profile email) and whatever known scopes the request asked for.
const tokenScope = (ctx) => [...new Set([
  ...String(ctx?.oidc?.params?.scope || '').split(' ').filter((s) => SCOPES.includes(s)), 'profile', 'email',
])].join(' ');

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter: Adapter,
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: SCOPES,
    claims: { openid: ['sub'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // oidc-provider issues JWT access tokens only for a resource server; each client gets
      // its own (a URN it never sees), whose audience is its Keycloak audience.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client) => {
          const c = clientByClientId(client.clientId);
          if (ctx.oidc.route === 'token' && c && !c.serviceAccountsEnabled) {
            throw new errors.UnauthorizedClient('Client not enabled to retrieve service account');
          }
          return `${RESOURCE_PREFIX}${encodeURIComponent(client.clientId)}`;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resource, client) => {
          const c = clientByClientId(client.clientId);
          if (!c || resource !== `${RESOURCE_PREFIX}${encodeURIComponent(client.clientId)}`) {
            throw new errors.InvalidTarget();
          }
          const aud = audienceOf(c);
          return {
            audience: Array.isArray(aud) ? aud[0] : aud,
            scope: SCOPES.filter((s) => s !== 'openid').join(' '),
            accessTokenTTL: TOKEN_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: () => TOKEN_TTL,
      ClientCredentials: () => TOKEN_TTL,
      Grant: 600,
      Interaction: 600,
      Session: 600,
      IdToken: () => TOKEN_TTL,
    },
    routes: {
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs',
      userinfo: '/protocol/openid-connect/userinfo',
      end_session: '/protocol/openid-connect/logout',
      introspection: '/protocol/openid-connect/token/introspect',
      revocation: '/protocol/openid-connect/revoke',
    },
    // Keycloak's client id claims, put in by oidc-provider's own hook.
    extraTokenClaims: async (ctx, token) => {
      if (!token.clientId) return undefined;
      return { azp: token.clientId, client_id: token.clientId };
    },
    formats: {
      customizers: {
        // The rest of a Keycloak service-account token, and Keycloak's JWT header typ.
        jwt: async (ctx, token, jwt) => {
          const c = clientByClientId(token.clientId);
          if (!c) return;
          jwt.header = { typ: 'JWT' };
          const ip = ctx?.ip ? ctx.ip.replace(/^::ffff:/, '') : '127.0.0.1';
          const p = jwt.payload;
          // Keycloak's claims, in Keycloak's order.
          jwt.payload = {
            exp: p.exp,
            iat: p.iat,
            jti: p.jti,
            iss: p.iss,
            aud: audienceOf(c),
            sub: c.serviceAccountUserId,
            typ: 'Bearer',
            azp: p.azp,
            acr: '1',
            realm_access: { roles: ['offline_access', 'uma_authorization', `default-roles-${REALM.toLowerCase()}`] },
            resource_access: resourceAccess(c),
            scope: tokenScope(ctx),
            email_verified: false,
            clientHost: ip,
            preferred_username: `service-account-${c.clientId.toLowerCase()}`,
            clientAddress: ip,
            client_id: p.client_id,
          };
        },
      },
    },
  });

  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`keycloak_server: oidc-provider server_error: ${err && err.message}\n`);
  });

  // Keycloak's response shapes on the token and certs endpoints.
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'token') {
      const body = ctx.body;
      if (ctx.status === 200 && body && body.access_token) {
        ctx.body = {
          access_token: body.access_token,
          expires_in: body.expires_in,
          refresh_expires_in: 0,
          token_type: 'Bearer',
          'not-before-policy': 0,
          scope: tokenScope(ctx),
        };
      } else if (body && body.error === 'invalid_client') {
        body.error_description = 'Invalid client or Invalid client credentials';
      } else if (body && body.error === 'unsupported_grant_type') {
        body.error_description = 'Unsupported grant_type';
      } else if (body && body.error === 'invalid_request' && /'grant_type'/.test(body.error_description || '')) {
        body.error_description = 'Missing form parameter: grant_type';
      } else if (body && body.error === 'unauthorized_client') {
        ctx.status = 401;
      }
    } else if (route === 'jwks' && ctx.status === 200) {
      ctx.set('Content-Type', 'application/json');
    }
  });
  return provider;
}

// ---------------------------------------------------------------------------------------
// Admin REST API
function send(res, status, body, { cache = false, charset = false, headers = {} } = {}) {
  const h = { ...headers };
  let data = '';
  if (body !== undefined) {
    data = JSON.stringify(body);
    h['Content-Type'] = charset ? 'application/json;charset=UTF-8' : 'application/json';
  }
  if (cache) h['Cache-Control'] = 'no-cache';
  if (status !== 204) h['Content-Length'] = Buffer.byteLength(data);
  res.writeHead(status, h);
  res.end(data);
}
const ok = (res, body, o = {}) => send(res, 200, body, { charset: true, ...o });
const fail = (res, status, body) => send(res, status, body);

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) { reject(new Error('too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Verifies the bearer token: RS256 with this realm's key, this issuer, not expired, a
// Keycloak access token. Returns its claims, or null.
async function bearerClaims(req, issuer) {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
  if (!m) return null;
  try {
    const { payload } = await jwtVerify(m[1], publicJwks, { issuer, algorithms: ['RS256'] });
    if (payload.typ !== 'Bearer') return null;
    return payload;
  } catch {
    return null;
  }
}

async function admin(req, res, url, issuer, base) {
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent); // admin realms R ...
  const claims = await bearerClaims(req, issuer);
  if (!claims) return fail(res, 401, { error: 'HTTP 401 Unauthorized' });
  if (parts[1] !== 'realms' || parts.length < 3) return fail(res, 501, { error: 'not implemented by the Keycloak stand-in' });
  if (parts[2] !== REALM) return fail(res, 404, { error: 'Realm not found.' });
  const roles = claims.resource_access?.['realm-management']?.roles || [];
  const caller = clientByClientId(claims.azp);
  if (!roles.includes('manage-clients') || !caller) return fail(res, 403, { error: 'HTTP 403 Forbidden' });

  const rest = parts.slice(3);
  const method = req.method;
  if (rest[0] !== 'clients' || rest.length > 3 || (rest.length === 3 && rest[2] !== 'client-secret')) {
    return fail(res, 501, { error: 'not implemented by the Keycloak stand-in' });
  }

  if (rest.length === 1) {
    if (method === 'GET') {
      const wanted = url.searchParams.get('clientId');
      const search = url.searchParams.get('search') === 'true';
      let list = [...clientsById.values()];
      if (wanted) list = list.filter((c) => (search ? c.clientId.includes(wanted) : c.clientId === wanted));
      const first = Number(url.searchParams.get('first') || 0) || 0;
      const max = url.searchParams.has('max') ? Number(url.searchParams.get('max')) : Infinity;
      return ok(res, list.slice(first, first + max).map(representation), { cache: true });
    }
    if (method === 'POST') {
      const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      if (type && type !== 'application/json') return fail(res, 415, { error: 'HTTP 415 Unsupported Media Type' });
      let rep;
      try {
        rep = JSON.parse(await readBody(req));
      } catch {
        return fail(res, 400, { error: 'invalid_request', error_description: 'Cannot parse the JSON' });
      }
      if (!rep || typeof rep !== 'object' || Array.isArray(rep)) {
        return fail(res, 400, { error: 'invalid_request', error_description: 'Cannot parse the JSON' });
      }
      if (typeof rep.clientId !== 'string' || rep.clientId === '') {
        return fail(res, 400, { errorMessage: 'Client ID is missing' });
      }
      if (clientByClientId(rep.clientId)) {
        return fail(res, 409, { errorMessage: `Client ${rep.clientId} already exists` });
      }
      const c = storeClient(rep);
      return send(res, 201, undefined, { headers: { Location: `${base}/admin/realms/${REALM}/clients/${c.id}` } });
    }
    return fail(res, 405, { error: 'HTTP 405 Method Not Allowed' });
  }

  const c = clientsById.get(rest[1]);
  if (rest.length === 2) {
    if (method !== 'GET' && method !== 'DELETE') return fail(res, 501, { error: 'not implemented by the Keycloak stand-in' });
    if (!c) return fail(res, 404, { error: 'Could not find client' });
    if (method === 'GET') return ok(res, representation(c), { cache: true });
    clientsById.delete(c.id);
    return send(res, 204, undefined, { cache: true });
  }

  // .../client-secret
  if (method !== 'GET' && method !== 'POST') return fail(res, 405, { error: 'HTTP 405 Method Not Allowed' });
  if (!c) return fail(res, 404, { error: 'Could not find client' });
  if (method === 'POST') {
    c.secret = newSecret();
    c.attributes['client.secret.creation.time'] = String(Math.floor(Date.now() / 1000));
    return ok(res, { type: 'secret', value: c.secret });
  }
  return ok(res, c.secret === undefined ? { type: 'secret' } : { type: 'secret', value: c.secret }, { cache: true });
}

// ---------------------------------------------------------------------------------------
// Test controls
async function control(req, res, url) {
  if (url.pathname !== '/stand-in/settings' || req.method !== 'POST') return fail(res, 404, { error: 'no such control' });
  let body;
  try {
    body = JSON.parse(await readBody(req, 4096));
  } catch {
    return fail(res, 400, { error: 'expected JSON' });
  }
  const delay = body?.jwksDelayMs;
  const ttl = body?.tokenTtl;
  if (delay !== undefined && (!Number.isInteger(delay) || delay < 0 || delay > 60000)) {
    return fail(res, 400, { error: 'jwksDelayMs: an integer from 0 to 60000' });
  }
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0 || ttl > 86400)) {
    return fail(res, 400, { error: 'tokenTtl: an integer from 1 to 86400' });
  }
  if (delay !== undefined) JWKS_DELAY_MS = delay;
  if (ttl !== undefined) TOKEN_TTL = ttl;
  return ok(res, { jwksDelayMs: JWKS_DELAY_MS, tokenTtl: TOKEN_TTL });
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// ---------------------------------------------------------------------------------------
// The HTTPS server
let handle = (req, res) => fail(res, 503, { error: 'starting' });
const server = https.createServer(tls, (req, res) => {
  const path = (req.url || '/').split('?')[0];
  res.on('finish', () => process.stderr.write(`keycloak_server: ${req.method} ${path} ${res.statusCode}\n`));
  Promise.resolve(handle(req, res)).catch((err) => {
    process.stderr.write(`keycloak_server: internal error: ${err && err.message}\n`);
    if (!res.headersSent) fail(res, 500, { error: 'unknown_error' });
    else res.destroy();
  });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const base = `https://127.0.0.1:${port}`;
  const issuer = `${base}/realms/${REALM}`;
  const provider = buildProvider(issuer);
  const oidc = provider.callback();
  const mount = `/realms/${REALM}`;

  handle = async (req, res) => {
    const url = new URL(req.url || '/', base);
    if (url.pathname === `${mount}/protocol/openid-connect/certs` && JWKS_DELAY_MS > 0) {
      process.stderr.write(`keycloak_server: delaying certs by ${JWKS_DELAY_MS} ms\n`);
      await sleep(JWKS_DELAY_MS);
    }
    if (url.pathname === mount || url.pathname.startsWith(`${mount}/`)) {
      req.originalUrl = req.url;
      req.url = req.url.slice(mount.length) || '/';
      return oidc(req, res);
    }
    if (url.pathname.startsWith('/realms/')) return fail(res, 404, { error: 'Realm does not exist' });
    if (url.pathname === '/admin' || url.pathname.startsWith('/admin/')) return admin(req, res, url, issuer, base);
    if (url.pathname.startsWith('/stand-in/')) return control(req, res, url);
    return fail(res, 404, { error: 'Unable to find matching target resource method' });
  };

  const tmp = `${opts['port-file']}.tmp.${process.pid}`;
  writeFileSync(tmp, `${port}\n`);
  renameSync(tmp, opts['port-file']);
  process.stderr.write(`keycloak_server: realm ${REALM} ready on ${base}\n`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
