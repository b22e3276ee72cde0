/* The main lcore's loop: carries host traffic between the DPDK ports and
 * their kernel tap interfaces (so that SSH, BGP and health checks work on
 * a port DPDK owns), and asks for next hops' MACs. Workers never make the
 * syscalls a tap costs: they hand frames over through rings. */
#ifndef FULCRUM_EXCEPTION_PATH_H
#define FULCRUM_EXCEPTION_PATH_H

#include <stdint.h>

struct dataplane;

/* Runs until dp->stop is set. */
void exception_path_run(struct dataplane *dp);

/* One pass of the loop; returns the number of frames moved. */
unsigned int exception_path_poll(struct dataplane *dp);

/* Sends ARP requests / neighbour solicitations for every next hop that
 * is unresolved or stale. */
void exception_path_probe_neighbours(struct dataplane *dp, uint32_t now);

#endif
