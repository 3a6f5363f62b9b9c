/**
 * Stands in for `google-auth-library` in the Lambda bundles (`FUNCTION_BUNDLING` aliases it here).
 *
 * `GmailMailSink` authorises every request itself (`GoogleAccessTokens` puts the bearer token in
 * the request headers) and never hands the googleapis client an auth client, so no code of the
 * library ever runs. It is bundled all the same because `@googleapis/gmail` builds a `GoogleAuth`
 * subclass at module load (`AuthPlus`) and `googleapis-common` re-exports the library's classes:
 * ~155 KB minified (google-auth-library, gtoken, gcp-metadata, json-bigint, bignumber.js, jws),
 * which kept copy-message over 1 MB (bench/README.md, "Lambda bundles and cold start").
 *
 * These classes keep those two modules loadable; anything that would really use Google's auth
 * library fails loudly instead of doing something else.
 */
const UNAVAILABLE =
  "google-auth-library is not in the Lambda bundle: GmailMailSink passes its own bearer token (infra/bundling/google-auth-library-stub.ts)";

export class GoogleAuth {
  getClient(): never {
    throw new Error(UNAVAILABLE);
  }
  getProjectId(): never {
    throw new Error(UNAVAILABLE);
  }
}

class Unavailable {
  constructor() {
    throw new Error(UNAVAILABLE);
  }
}

export class OAuth2Client extends Unavailable {}
export class JWT extends Unavailable {}
export class Compute extends Unavailable {}
export class UserRefreshClient extends Unavailable {}
export class ExternalAccountClient extends Unavailable {}
export class BaseExternalAccountClient extends Unavailable {}
export class IdentityPoolClient extends Unavailable {}
export class AwsClient extends Unavailable {}
