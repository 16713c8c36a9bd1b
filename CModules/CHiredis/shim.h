#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H
/* hiredis is used for its RESP reply reader and command formatter only; sockets belong to NIO. */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

/* The reply array is a C array of pointers; Swift sees it awkwardly, so index it here. */
static inline redisReply *CHiredis_element(const redisReply *reply, size_t index) {
    return reply->element[index];
}
#endif
