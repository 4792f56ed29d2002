/* regions.h -- regions and the global load balancer in front of them.
 *
 * Each region of the scenario's regions: section is a cluster of its own
 * (gateway, replicas, node pools built from cluster.pools, response cache)
 * with its own autoscaler when one is configured, and its own event queue;
 * the simulator pops the earliest event across the balancer's queue and the
 * regions' (at equal times the balancer's first, then the regions' in
 * scenario order).
 *
 * For each arrival the balancer draws the client region (by the clients:
 * shares) and sends the request to the nearest region (lowest round trip
 * from that client region) that is up and whose gateway queue is not full;
 * with none, the request is rejected.  The round trip is added to the
 * request's TTFT and E2E.  At an outage start (regions.NAME.outages) the
 * region goes down: the requests it holds fail over through the balancer as
 * client retries, keeping their arrival time; its replicas stay, billed and
 * idle, until the outage ends.
 *
 * Without a regions: section there is one implicit region, on the
 * simulator's own event queue, with no network latency: arrivals go
 * straight to its cluster, exactly as before regions existed. */
#ifndef LLM_REGIONS_H
#define LLM_REGIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "sim/autoscaler.h"
#include "sim/cluster.h"
#include "sim/engine.h"
#include "sim/metrics.h"
#include "sim/nodes.h"
#include "sim/scenario.h"
#include "workloads/trace.h"

/* Event kinds of the balancer (on the simulator's queue; obj: the region). */
enum regions_event {
    EV_REGION_DOWN = 400,
    EV_REGION_UP = 401,
};

struct regions;

/* Create the regions' clusters and autoscalers and schedule the outages on
 * EN, the simulator's queue.  NULL on error. */
struct regions *regions_create(const struct scenario *sc, struct engine *en, struct metrics *m, struct err *e);
void regions_free(struct regions *rg);

/* Pop the earliest event of all queues into *EV and bring every queue's
 * clock to its time.  *REGION: the region whose queue it came from, or -1
 * for the simulator's queue.  Returns 0 when every queue is empty. */
int regions_pop(struct regions *rg, struct event *ev, int *region);
/* Handle an event that is not the simulator's own (arrivals, ticks): the
 * balancer's, or one of REGION's cluster or autoscaler (REGION -1: the
 * implicit region).  Returns -1 when out of memory. */
int regions_handle(struct regions *rg, int region, const struct event *ev);
/* Route an arriving request.  Returns -1 when out of memory. */
int regions_arrive(struct regions *rg, const struct trace_request *req);

/* Requests in flight in all regions. */
size_t regions_in_flight(const struct regions *rg);
/* True when no region's autoscaler can ever bring a replica up again (see
 * autoscaler_idle_forever); false without autoscalers. */
bool regions_idle_forever(const struct regions *rg);
/* Events processed by the regions' own queues (not the simulator's). */
unsigned long long regions_events(const struct regions *rg);

/* Close the timeline interval: the sum over regions (busy and KV fractions
 * weighted by the regions' billed replicas). */
void regions_sample(struct regions *rg, struct timeline_sample *s);
/* Totals summed over regions (replicas_min and _max: sums of the regions'). */
void regions_totals(struct regions *rg, struct cluster_totals *t);
void regions_autoscaler_totals(const struct regions *rg, struct autoscaler_totals *t);
/* Pool I's totals summed over regions (nodes_max: the sum of the regions'). */
void regions_pool_totals(struct regions *rg, size_t i, struct pool_totals *t);
/* Requests moved to another region by outages. */
unsigned long long regions_failed_over(const struct regions *rg);
/* The per-region summary {NAME: {arrived, completed, failed_over, cost_usd,
 * replicas_mean}} over SPAN_S seconds, or NULL without a regions: section
 * (or out of memory). */
json_t *regions_summary(struct regions *rg, double span_s);

#endif
