#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
/* libcrypto only: SHA-256, HMAC, random bytes, constant-time comparison. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#endif
