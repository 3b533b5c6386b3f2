// A real OpenID provider for recarchive's single sign-on tests: the certified
// `oidc-provider` package, on 127.0.0.1 only. package.json pins version 8.x,
// which runs on Debian 12's Node.js 18 as well as on later LTS releases (9.x
// asks for Node.js 20.19 or later); scripts/test installs it with `npm ci`.
//
//   node tests/oidc/provider.mjs        listens on a free port, prints one JSON
//                                       line {"issuer": "http://127.0.0.1:PORT"}
//
// Environment: OIDC_PORT (default 0: a free port); OIDC_ACCOUNTS_FILE, a JSON
// object {login: {claim: value, ...}} read at every sign-in, whose claims
// replace the defaults below (a test changes a role at the provider with it).
//
// Accounts: any login name signs in (the dev interactions' login form; the
// password is not checked). The login's first part before "-" selects the
// role claim `recarchive_role`:
//   qa-*       "recarchive-qa"             dispute-*  "recarchive-dispute"
//   privacy-*  "recarchive-privacy"        auditor-*  "recarchive-auditor"
//   admin-*    "recarchive-admin"          multi-*    ["staff", "recarchive-qa"]
//   unknown-*  "janitor" (a value no mapping names)
//   anything else: no role claim at all.
// Clients register themselves (dynamic registration, RFC 7591) with their
// redirect URL, as each test's recarchive listens on a port of its own.

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";

import Provider from "oidc-provider";

const ROLES = {
  qa: "recarchive-qa",
  dispute: "recarchive-dispute",
  privacy: "recarchive-privacy",
  auditor: "recarchive-auditor",
  admin: "recarchive-admin",
  multi: ["staff", "recarchive-qa"],
  unknown: "janitor",
};

function overrides(login) {
  const file = process.env.OIDC_ACCOUNTS_FILE;
  if (!file) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8"))[login] ?? {};
  } catch (error) {
    if (error.code === "ENOENT") return {};
    throw error;
  }
}

function claimsOf(login) {
  const claims = {
    sub: login,
    preferred_username: login,
    name: `Test user ${login}`,
    email: `${login}@example.test`,
  };
  const role = ROLES[login.split("-", 1)[0]];
  if (role !== undefined) claims.recarchive_role = role;
  return { ...claims, ...overrides(login) };
}

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "test-rs256", alg: "RS256", use: "sig" };

const configuration = {
  clients: [],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
  },
  pkce: { required: () => true },
  scopes: ["openid", "offline_access", "profile", "email"],
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name", "recarchive_role"],
    email: ["email"],
  },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return claimsOf(id); } };
  },
  // The archive is a first-party client: no consent screen, every requested scope granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile email");
    await grant.save();
    return grant;
  },
};

const server = http.createServer();
server.listen(Number(process.env.OIDC_PORT ?? 0), "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.on("server_error", (ctx, error) => console.error("server_error", error));
  server.on("request", provider.callback());
  console.log(JSON.stringify({ issuer }));
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
