/* ws_frontend.h -- the HTTP/WebSocket front end on libwebsockets, on the
 * hub's own libuv loop (LWS_SERVER_OPTION_LIBUV + foreign loop).
 *
 * One HTTP/1.1 port serves: the WebSocket API at /ws (subprotocols
 * "mhtas.v1.json" and "mhtas.v1.proto", envelopes of proto/mhtas/v1/ws.proto),
 * GET /healthz, GET /metrics (Prometheus text), and the console's static
 * files from [hub] static_dir with a strict Content-Security-Policy.
 * The Origin of every WebSocket upgrade is checked against
 * [console] allowed_origins.
 */
#ifndef MHTAS_WS_FRONTEND_H
#define MHTAS_WS_FRONTEND_H

#include <uv.h>

#include "hub/hub.h"

typedef struct ws_frontend ws_frontend_t;

ws_frontend_t *ws_frontend_new(hub_t *hub, uv_loop_t *loop);

/* Listens on host:port (0 = ephemeral), storing the bound port. Returns 0 or
 * a negative value with err filled in. */
int ws_frontend_start(ws_frontend_t *fe, const char *host, int port, int *bound_port, char *err,
                      size_t errlen);

/* Closes every socket (close code 1001 "going away"), then the context; calls
 * cb(ctx) when lws has released the loop. Then ws_frontend_free. */
void ws_frontend_close(ws_frontend_t *fe, void (*cb)(void *ctx), void *ctx);
void ws_frontend_free(ws_frontend_t *fe);

#endif
