/* A program for the gdb tests (tests/tests/gdb.rs), built with symbols.
 * main() calls add() with known arguments, counts in a global that a watchpoint
 * can watch, prints `greeting` (which gdb may overwrite) on the UART, and
 * powers off through the SiFive test finisher (start.S). */
#include <stdint.h>

#define UART ((volatile uint8_t *)0x10000000UL)

volatile uint64_t counter;
char greeting[16] = "hello";

static void put(char c) {
    while (!(UART[5] & 0x20)) {
    }
    UART[0] = (uint8_t)c;
}

__attribute__((noinline)) uint64_t add(uint64_t a, uint64_t b) {
    return a + b;
}

__attribute__((noinline)) void bump(void) {
    counter = counter + 1;
}

int main(void) {
    uint64_t sum = add(40, 2);
    for (int i = 0; i < 3; i++) bump();
    for (const char *p = greeting; *p; p++) put(*p);
    put('\n');
    return sum == 42 && counter == 3 ? 0 : 1;
}
