/* Active health checks: fulcrumd connects to every backend of every
 * service over TCP, on the service's port or the check port its
 * [health NAME] section gives (a port-0 service is checked only with one),
 * every health_interval_ms, and counts a connection not made within
 * health_timeout_ms, or refused, as a failure.
 *
 * A backend whose checks fail health_fall times in a row is "down" by
 * health; one that then passes health_rise times in a row is "up" again.
 * Until either count is reached it is "unknown". What follows is changed
 * in the store as any change is (mgmt_commit), by user "health" with
 * change_meta.automatic set, and pushed to the dataplane:
 *
 *   - an active backend that is down by health is set down, but only
 *     while another active backend of its service passes its checks:
 *     when none does, the checker may be the thing that is wrong, so
 *     every active backend stays active (fail-open) and says so loudly;
 *   - a backend the checker set down is set active when it is up again.
 *
 * A backend an operator drained or set down is checked, so that its
 * health shows, but never changed (but for a drain's deadline, below);
 * nor is one the checker had set down and an operator has changed since. Which backends the checker set down
 * is kept in memory only: after a restart they stay down until an
 * operator brings them back.
 *
 * A [health NAME] section (daemon_config.h) may check with an HTTP GET
 * that must answer a given status, or a UDP datagram that must get a
 * reply (holding a given text); the timeout covers the whole exchange.
 * on_backend_down = keep sets a failing backend draining rather than
 * down, so that its established flows stay on it until they are idle
 * (the dataplane rebalances the flows of a down backend, and keeps those
 * of a draining one). Flap damping holds a backend whose health changes
 * too often (count_flap in health.c); slow start ramps a returning
 * backend's weight in steps (health.c, "slow start").
 *
 * Checks are non-blocking sockets watched by one epoll set, timed by a
 * heap of deadlines, all in fulcrumd's own thread: the loop polls
 * health_fd() with health_wait_ms() as its longest sleep and calls
 * health_run() when it wakes. */
#ifndef FULCRUM_HEALTH_H
#define FULCRUM_HEALTH_H

#include <stdint.h>

#include <jansson.h>

struct fulcrumd;
struct health;

/* Checks for d's services, with d->cfg's settings. NULL when out of
 * memory or of file descriptors. */
struct health *health_new(struct fulcrumd *d);
void health_free(struct health *h);

/* Readable when a check has finished. */
int health_fd(const struct health *h);

/* Milliseconds from now_ms until the next check starts or times out. */
int health_wait_ms(const struct health *h, uint64_t now_ms);

/* Takes in what the store now holds, finishes the checks that are done
 * or overdue, starts those that are due and commits what their results
 * call for. */
void health_run(struct health *h, uint64_t now_ms);

/* An operator drained `addr` of `service` with a deadline: unless it is
 * changed first, it is set down by user "health" `seconds` from now (on
 * CLOCK_MONOTONIC, the clock of health_run's now_ms). Kept in memory
 * only. Returns 0, or -1 when out of memory. */
int health_drain_deadline(struct health *h, const char *service,
			  const char *addr, unsigned int seconds);

/* For the management protocol's "health" command (mgmt.h): the settings
 * and every checked service (or only `service`), each with its backends'
 * health. NULL when there is no such service. */
json_t *health_json(const struct health *h, const char *service);

/* For "status": {"backends", "up", "down", "unknown", "late": checks
 * not started a check timeout after they were due (more are due than
 * the host can start), "fail_open": [service names]}. */
json_t *health_summary(const struct health *h);

#endif
