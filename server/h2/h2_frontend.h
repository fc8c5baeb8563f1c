/* h2_frontend.h -- the gRPC front end: cleartext HTTP/2 (h2c, prior
 * knowledge) on nghttp2, on the hub's libuv loop.
 *
 * Speaks the standard gRPC wire format so that a stock client (grpc-js,
 * python grpcio) works: 5-byte length prefix, application/grpc, grpc-status
 * and grpc-message trailers (trailers-only responses for early errors),
 * unary and server-streaming calls, HTTP/2 flow control honoured.
 * Auth: `authorization: Bearer <token>` on every call.
 */
#ifndef MHTAS_H2_FRONTEND_H
#define MHTAS_H2_FRONTEND_H

#include <uv.h>

#include "hub/hub.h"

typedef struct h2_frontend h2_frontend_t;

/* Creates the front end (nothing listens yet). `hub` is borrowed. */
h2_frontend_t *h2_frontend_new(hub_t *hub, uv_loop_t *loop);

/* Binds and listens on host:port (port 0 = ephemeral); stores the port bound
 * in *bound_port. Returns 0, or a negative libuv error with err filled in. */
int h2_frontend_start(h2_frontend_t *fe, const char *host, int port, int *bound_port, char *err,
                      size_t errlen);

/* Stops listening, ends every connection (GOAWAY first), and calls cb(ctx)
 * once every handle is closed; then h2_frontend_free may be called. */
void h2_frontend_close(h2_frontend_t *fe, void (*cb)(void *ctx), void *ctx);
void h2_frontend_free(h2_frontend_t *fe);

#endif
