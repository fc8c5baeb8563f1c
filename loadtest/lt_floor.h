/* lt_floor.h -- the load test's floor: the cheapest relay this machine can
 * run, to put the hub's figures in proportion.
 *
 * A relay thread (its own libuv loop) accepts two TCP connections on
 * 127.0.0.1 and copies every byte from one to the other: no routing, no
 * parsing, no protobuf, no HTTP/2 or WebSocket framing. Two clients on the
 * caller's loop play the operator (A) and the practitioner (B) and exchange
 * fixed-size records (LT_FLOOR_RECORD bytes, the first 8 holding the
 * intended send time), so a message takes the same path shape as through
 * the hub: client -> relay process/thread -> client, over loopback TCP.
 */
#ifndef LT_FLOOR_H
#define LT_FLOOR_H

#include <stdint.h>
#include <uv.h>

typedef struct lt_floor lt_floor_t;

/* Called for each record received: `to_b` is true for A -> B (operator to
 * practitioner), `intended_ns` is the sender's intended send time. */
typedef void (*lt_floor_recv_cb)(void *ctx, int to_b, uint64_t intended_ns, uint64_t now_ns);

/* Starts the relay thread and connects A and B on `loop`. Returns NULL on
 * failure (message on stderr). */
lt_floor_t *lt_floor_start(uv_loop_t *loop, size_t record_bytes, lt_floor_recv_cb cb, void *ctx);
/* Both clients connected and identified to the relay. */
int lt_floor_ready(const lt_floor_t *f);
/* Sends one record from A (to_b = 1) or B (to_b = 0). Returns 0 or -1. */
int lt_floor_send(lt_floor_t *f, int to_b, uint64_t intended_ns);
/* Closes the clients, stops and joins the relay thread. Runs `loop` until
 * the clients' handles are closed; frees `f`. */
void lt_floor_stop(lt_floor_t *f);

#endif
