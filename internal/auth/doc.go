// Package auth owns edgestock's bearer tokens (SPEC §6), for both roles:
// the scopes, the signed claims, issuing them against a token store, and
// the HTTP guard that checks them. Tokens are HMAC-signed claims; each
// store also records every token it issued, so a revocation applies on the
// next request.
//
// A token is bound to the installation that issued it: an agent's tokens
// name its warehouse, a hub's tokens carry the "hub" audience, and the
// signing key is the issuer's own (an agent's token.key, a hub's key in
// its store). A token of one never opens the other.
package auth
