// A real OpenID Provider for Plein's single sign-on tests: panva/oidc-provider (OpenID
// Certified), with its development sign-in pages (any login name is an account id).
//
//   node op.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI [CODE_TTL_SECONDS]
//
// Prints "ready <issuer>" once listening. Test-only control endpoints (not OpenID):
//   POST /test/accounts {sub, email, email_verified, name}  what an account's claims are
//   POST /test/clients  {client_id, client_secret, redirect_uri}  another relying party
//   POST /test/rotate   sign with a new key from now on (the old one stays published,
//                       as a provider does while it rotates)
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, codeTtl = '60'] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const accounts = new Map();
const clients = [{
  client_id: clientId,
  client_secret: clientSecret,
  redirect_uris: [redirectUri],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}];

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

let keys = [newKey()];

function build() {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    pkce: { required: () => true },
    // Scope claims (email, email_verified, name) in the ID token itself, as the identity
    // providers of organisations send them: Plein reads the ID token, not userinfo.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    ttl: { AuthorizationCode: Number(codeTtl) },
    cookies: { keys: ['plein-test-op-cookie-key'] },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, ...(accounts.get(sub) || {}) };
        },
      };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

let handler = build().callback();

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString() || '{}');
}

const server = http.createServer(async (req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/test/')) {
    const body = await readJson(req);
    if (req.url === '/test/accounts') {
      const { sub, ...claims } = body;
      accounts.set(sub, claims);
    } else if (req.url === '/test/clients') {
      clients.push({
        client_id: body.client_id,
        client_secret: body.client_secret,
        redirect_uris: [body.redirect_uri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      });
      handler = build().callback();
    } else if (req.url === '/test/rotate') {
      // The first key of an algorithm signs; the old key stays published for a while.
      keys = [newKey(), ...keys];
      handler = build().callback();
    } else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(204).end();
    return;
  }
  handler(req, res);
});

server.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
