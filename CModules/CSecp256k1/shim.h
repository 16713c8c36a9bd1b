#ifndef CSECP256K1_SHIM_H
#define CSECP256K1_SHIM_H
/* libsecp256k1 with the recovery module (Debian's libsecp256k1-dev builds it in). */
#include <secp256k1.h>
#include <secp256k1_recovery.h>

/* Composite flag macros do not import into Swift; name the ones we use. */
static inline unsigned int CSecp256k1_contextFlags(void) {
    return SECP256K1_CONTEXT_SIGN | SECP256K1_CONTEXT_VERIFY;
}
static inline unsigned int CSecp256k1_uncompressed(void) {
    return SECP256K1_EC_UNCOMPRESSED;
}
#endif
