/* Pointer chasing: 512 Ki nodes of 32 bytes linked in one random cycle
 * (Sattolo's shuffle), walked many times round, summing a field of each node. */
#include "workload.h"

#define NODES SCALE(512 * 1024, 4 * 1024)
#define STEPS SCALE(4 * 1000 * 1000, 200 * 1000)
#define EXPECTED_FULL 0x00000746a9c72b8cULL
#define EXPECTED_SMALL 0x00000004ae90dd75ULL
#define EXPECTED SCALE(EXPECTED_FULL, EXPECTED_SMALL)

struct node {
    struct node *next;
    uint64_t value;
    uint64_t pad[2];
};

static struct node nodes[NODES];
static uint32_t order[NODES];

static uint64_t workload(void) {
    uint64_t seed = 99;
    for (uint32_t i = 0; i < NODES; i++) order[i] = i;
    /* Sattolo: a random permutation that is a single cycle. */
    for (uint32_t i = NODES - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(next_random(&seed) % i);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint32_t i = 0; i < NODES; i++) {
        nodes[order[i]].next = &nodes[order[(i + 1) % NODES]];
        nodes[i].value = next_random(&seed) & 0xffff;
    }
    struct node *p = &nodes[0];
    uint64_t sum = 0;
    for (uint64_t s = 0; s < STEPS; s++) {
        sum += p->value ^ s;
        p = p->next;
    }
    return sum;
}

#define WORKLOAD_MAIN
#include "workload.h"
