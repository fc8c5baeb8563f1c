/* lt_ws.h -- a minimal RFC 6455 WebSocket client on a libuv loop, for the
 * load test's operators and idle consoles.
 *
 * It does only what the hub's console socket needs: an HTTP/1.1 upgrade to
 * ws://HOST:PORT/PATH with one subprotocol, masked binary frames out,
 * unmasked frames in (fragments reassembled up to a bound), pings answered,
 * close frames answered. No TLS, no extensions, no text frames out. The
 * Sec-WebSocket-Accept value is not verified (the peer is our own hub on
 * loopback; this is a load generator, not a browser).
 *
 * Lifecycle: lt_ws_new -> lt_ws_connect -> on_open -> lt_ws_send ... ->
 * lt_ws_close -> on_close (always exactly once after connect was called,
 * whatever ended it) -> lt_ws_free (in or after on_close).
 */
#ifndef LT_WS_H
#define LT_WS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct lt_ws lt_ws_t;

typedef struct lt_ws_callbacks {
    void (*on_open)(lt_ws_t *ws, void *ctx);
    /* One whole binary or text message; `data` borrowed for the call. */
    void (*on_message)(lt_ws_t *ws, void *ctx, const uint8_t *data, size_t len);
    /* `why` is a static string ("closed by peer", "connect failed", ...). */
    void (*on_close)(lt_ws_t *ws, void *ctx, const char *why);
} lt_ws_callbacks_t;

/* `cbs` is borrowed and must outlive the socket. */
lt_ws_t *lt_ws_new(uv_loop_t *loop, const lt_ws_callbacks_t *cbs, void *ctx);
/* Starts the TCP connect and the upgrade. host: an IPv4 literal. */
int lt_ws_connect(lt_ws_t *ws, const char *host, int port, const char *path,
                  const char *subprotocol);
/* Sends one binary message (copied). Returns 0, or -1 if not open. */
int lt_ws_send(lt_ws_t *ws, const uint8_t *data, size_t len);
/* Closes the TCP connection (with a close frame if open); on_close follows. */
void lt_ws_close(lt_ws_t *ws);
void lt_ws_free(lt_ws_t *ws);
int lt_ws_is_open(const lt_ws_t *ws);
/* Bytes queued in libuv for writing (backpressure indicator). */
size_t lt_ws_write_queue(const lt_ws_t *ws);

#endif
