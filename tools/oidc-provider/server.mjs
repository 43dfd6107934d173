// An OpenID provider for local tests and demos: the certified `oidc-provider` package does all of
// the protocol (discovery, JWKS, authorization code with PKCE, token, refresh, userinfo); this file
// only reads its settings from a JSON file, serves it over HTTPS on one address, and adds a
// sign-in page that checks each user's password.
//
//   node server.mjs CONFIG.json
//
// CONFIG.json:
//   issuer          "https://127.0.0.1:PORT" (the address it listens on is taken from it)
//   tls             {"cert": PEM file, "key": PEM file}
//   signingKey      optional: a file holding the private RSA signing key as a JWK (with "kid");
//                   without it a fresh key is made at each start
//   idTokenSeconds  optional: how long ID tokens live (default 3600)
//   clients         client metadata as OpenID Connect Dynamic Registration names it
//   users           [{"username", "password", "email", "groups": [...]}]
//
// Prints "listening ISSUER" on stdout once it serves; stops on SIGTERM or SIGINT.
import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import Provider from 'oidc-provider';

function fail(message) {
  process.stderr.write(`oidc-provider: ${message}\n`);
  process.exit(2);
}

if (process.argv.length !== 3) fail('usage: node server.mjs CONFIG.json');
let config;
try {
  config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (error) {
  fail(`cannot read ${process.argv[2]}: ${error.message}`);
}
for (const field of ['issuer', 'tls', 'clients', 'users']) {
  if (!(field in config)) fail(`the configuration lacks "${field}"`);
}
const issuer = new URL(config.issuer);
if (issuer.protocol !== 'https:') fail('the issuer must be an https:// URL');

function signingKey() {
  if (config.signingKey) return JSON.parse(readFileSync(config.signingKey, 'utf8'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex') };
}

const users = new Map(config.users.map((user) => [user.username, user]));
const digest = (text) => createHash('sha256').update(String(text), 'utf8').digest();

function passwordMatches(username, password) {
  const user = users.get(username);
  // Compare digests of equal length in constant time, also for unknown users.
  const expected = digest(user ? user.password : randomBytes(16).toString('hex'));
  return timingSafeEqual(expected, digest(password)) && user !== undefined;
}

const provider = new Provider(issuer.href.replace(/\/$/, ''), {
  clients: config.clients,
  jwks: { keys: [{ alg: 'RS256', use: 'sig', ...signingKey() }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'email', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  // The API server reads email and groups from the ID token, not from userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: {
    IdToken: config.idTokenSeconds ?? 3600,
    AccessToken: 3600,
    RefreshToken: 86400,
    Interaction: 600,
    Session: 8 * 3600,
    Grant: 86400,
  },
  // Clients allowed the refresh_token grant get a refresh token without offline_access.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    const user = users.get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: user.email, email_verified: true, groups: user.groups ?? [] };
      },
    };
  },
});
provider.on('server_error', (_ctx, error) => process.stderr.write(`server error: ${error.stack}\n`));

// The sign-in form's post ends in a redirect to a client's callback, and a browser holds that
// redirect to the page's form-action too: so the clients' callback origins are allowed there
// (a native client's loopback callback on any port, as the provider accepts it).
function callbackSource(uri) {
  const url = new URL(uri);
  const loopback = url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  return loopback ? `http://${url.hostname}:*` : url.origin;
}
const callbackOrigins = [
  ...new Set(config.clients.flatMap((client) => client.redirect_uris ?? []).map(callbackSource)),
];
const formAction = ["'self'", ...callbackOrigins].join(' ');

const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(res, uid, status, message) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': `default-src 'none'; form-action ${formAction}`,
  });
  res.end(`<!doctype html><html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>${message ? `<p role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Username <input name="login" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// The consent a first-party client needs: every scope and claim it asked for.
async function grantAll(details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function interaction(req, res) {
  const path = new URL(req.url, issuer).pathname;
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && path === `/interaction/${details.uid}`) {
    if (details.prompt.name === 'login') return loginPage(res, details.uid, 200);
    const grantId = await grantAll(details);
    return provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
  }
  if (req.method === 'POST' && path === `/interaction/${details.uid}/login`) {
    const form = await readForm(req);
    const username = form.get('login') ?? '';
    if (!passwordMatches(username, form.get('password') ?? '')) {
      return loginPage(res, details.uid, 401, 'Unknown user or wrong password.');
    }
    return provider.interactionFinished(req, res, { login: { accountId: username } }, {
      mergeWithLastSubmission: false,
    });
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  return res.end('not found\n');
}

const handleProtocol = provider.callback();
const server = createServer(
  { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
  (req, res) => {
    if (!req.url.startsWith('/interaction/')) return handleProtocol(req, res);
    return interaction(req, res).catch((error) => {
      if (!res.headersSent) {
        res.writeHead(400, { 'Content-Type': 'text/plain' });
        res.end(`sign-in failed: ${error.message}\n`);
      }
    });
  },
);
server.listen(Number(issuer.port || 443), issuer.hostname, () => {
  process.stdout.write(`listening ${issuer.href}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    process.exit(0);
  });
}
