#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
/* libcrypto only: SHA-256, HMAC, random bytes, constant-time comparison, ES256/Ed25519 signing
   and Ed25519 verification. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>

/* BIO_new_mem_buf's length is an int; a macro-free wrapper keeps Swift happy. */
static inline EVP_PKEY *COpenSSL_readPrivateKeyPEM(const char *pem, int length) {
    BIO *bio = BIO_new_mem_buf(pem, length);
    if (bio == NULL) return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return key;
}
#endif
