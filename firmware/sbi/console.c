/*
 * Turing SBI: polled ns16550a console.
 */
#include "sbi.h"

#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_LSR 5 /* line status */
#define LSR_DR 0x01
#define LSR_THRE 0x20

static volatile uint8_t *const uart = (volatile uint8_t *)UART_BASE;
static unsigned int console_word;

void console_lock(void)
{
    while (__atomic_exchange_n(&console_word, 1, __ATOMIC_ACQUIRE) != 0) {
        /* Plain loads until it looks free (the owner may share our host thread). */
        while (*(volatile unsigned int *)&console_word != 0)
            ;
    }
}

void console_unlock(void)
{
    __atomic_store_n(&console_word, 0, __ATOMIC_RELEASE);
}

void uart_putc(int c)
{
    while ((uart[UART_LSR] & LSR_THRE) == 0)
        ;
    uart[UART_THR] = (uint8_t)c;
}

int uart_getc(void)
{
    if ((uart[UART_LSR] & LSR_DR) == 0)
        return -1;
    return uart[UART_RBR];
}

void print_str(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            uart_putc('\r');
        uart_putc(*s);
    }
}

void print_hex(unsigned long v)
{
    int shift = 60;
    uart_putc('0');
    uart_putc('x');
    while (shift > 0 && (v >> shift) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        uart_putc("0123456789abcdef"[(v >> shift) & 15]);
}

void print_dec(unsigned long v)
{
    char buf[24];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (i > 0)
        uart_putc(buf[--i]);
}
