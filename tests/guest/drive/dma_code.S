/* DMA over code the hart already ran: the program runs `target` (which returns
 * 1) until it is hot, writes a sector holding new code (returning 2) to the
 * disk through virtio-blk, reads that sector back over `target` by DMA, and
 * calls `target` again, without a fence.i. The emulator must notice that the
 * device overwrote code it decoded or translated, as QEMU does, and run the new
 * code. Runs with one writable virtio-blk disk (virtio-mmio version 2: on QEMU
 * `-global virtio-mmio.force-legacy=false`). */
#include "test.h"

#define VIRTIO_SLOT0 0x10001000
#define VIRTIO_STRIDE 0x1000
#define VIRTIO_SLOTS 8
#define MAGIC_VALUE 0x000
#define VERSION 0x004
#define DEVICE_ID 0x008
#define DEVICE_FEATURES 0x010
#define DEVICE_FEATURES_SEL 0x014
#define DRIVER_FEATURES 0x020
#define DRIVER_FEATURES_SEL 0x024
#define QUEUE_SEL 0x030
#define QUEUE_NUM_MAX 0x034
#define QUEUE_NUM 0x038
#define QUEUE_READY 0x044
#define QUEUE_NOTIFY 0x050
#define STATUS 0x070
#define QUEUE_DESC_LOW 0x080
#define QUEUE_DESC_HIGH 0x084
#define QUEUE_DRIVER_LOW 0x090
#define QUEUE_DRIVER_HIGH 0x094
#define QUEUE_DEVICE_LOW 0x0a0
#define QUEUE_DEVICE_HIGH 0x0a4

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define QSIZE 8
#define DESC_NEXT 1
#define DESC_WRITE 2
#define BLK_T_IN 0
#define BLK_T_OUT 1

  .text
  .globl test_main
test_main:
  addi sp, sp, -16
  sd ra, 0(sp)

  /* 1: the old code runs, often enough for any JIT to translate it. */
  TEST(1)
  li s1, 2000
1:
  call target
  CHECK(a0, 1)
  addi s1, s1, -1
  bnez s1, 1b

  /* 2: find the disk: a version 2 virtio-mmio slot with device ID 2. */
  TEST(2)
  li s0, VIRTIO_SLOT0
  li s1, VIRTIO_SLOTS
  li t1, 0x74726976
2:
  lw t0, MAGIC_VALUE(s0)
  bne t0, t1, 3f
  lw t0, VERSION(s0)
  li t2, 2
  bne t0, t2, 3f
  lw t0, DEVICE_ID(s0)
  beq t0, t2, found
3:
  li t0, VIRTIO_STRIDE
  add s0, s0, t0
  addi s1, s1, -1
  bnez s1, 2b
  j fail

found:
  /* 3: reset, negotiate VERSION_1 only, set up queue 0. */
  TEST(3)
  sw zero, STATUS(s0)
  li t0, S_ACKNOWLEDGE
  sw t0, STATUS(s0)
  li t0, S_ACKNOWLEDGE | S_DRIVER
  sw t0, STATUS(s0)
  li t0, 1
  sw t0, DEVICE_FEATURES_SEL(s0)
  lw t1, DEVICE_FEATURES(s0)
  andi t1, t1, 1
  beqz t1, fail
  sw t0, DRIVER_FEATURES_SEL(s0)
  sw t0, DRIVER_FEATURES(s0)
  sw zero, DRIVER_FEATURES_SEL(s0)
  sw zero, DRIVER_FEATURES(s0)
  li t0, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK
  sw t0, STATUS(s0)
  lw t1, STATUS(s0)
  andi t1, t1, S_FEATURES_OK
  beqz t1, fail
  sw zero, QUEUE_SEL(s0)
  lw t1, QUEUE_NUM_MAX(s0)
  li t2, QSIZE
  bltu t1, t2, fail
  sw t2, QUEUE_NUM(s0)
  la t1, desc
  sw t1, QUEUE_DESC_LOW(s0)
  srli t1, t1, 32
  sw t1, QUEUE_DESC_HIGH(s0)
  la t1, avail
  sw t1, QUEUE_DRIVER_LOW(s0)
  srli t1, t1, 32
  sw t1, QUEUE_DRIVER_HIGH(s0)
  la t1, used
  sw t1, QUEUE_DEVICE_LOW(s0)
  srli t1, t1, 32
  sw t1, QUEUE_DEVICE_HIGH(s0)
  li t1, 1
  sw t1, QUEUE_READY(s0)
  li t0, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
  sw t0, STATUS(s0)

  /* 4: write the new code to sector 0. */
  TEST(4)
  li a0, BLK_T_OUT
  la a1, newcode
  li a2, 0
  call request
  CHECK(a0, 0)

  /* 5: read sector 0 back over `target`, which the hart decoded and ran. */
  TEST(5)
  li a0, BLK_T_IN
  la a1, target
  li a2, DESC_WRITE
  call request
  CHECK(a0, 0)

  /* 6: the new code runs, whether the old one was interpreted or translated. */
  TEST(6)
  call target
  CHECK(a0, 2)
  li s1, 100
6:
  call target
  CHECK(a0, 2)
  addi s1, s1, -1
  bnez s1, 6b

  ld ra, 0(sp)
  addi sp, sp, 16
  ret

/* One block request of type a0 on sector 0 with the 512-byte buffer a1, whose
 * descriptor gets the extra flags a2 (DESC_WRITE for reads). Waits for the used
 * ring; returns the request's status byte in a0. Uses t0-t3. */
request:
  la t0, header
  sw a0, 0(t0)
  sw zero, 4(t0)
  sd zero, 8(t0)
  la t1, desc
  /* desc 0: the header, device-readable. */
  sd t0, 0(t1)
  li t2, 16
  sw t2, 8(t1)
  li t2, DESC_NEXT
  sh t2, 12(t1)
  li t2, 1
  sh t2, 14(t1)
  /* desc 1: the data. */
  sd a1, 16(t1)
  li t2, 512
  sw t2, 24(t1)
  ori t2, a2, DESC_NEXT
  sh t2, 28(t1)
  li t2, 2
  sh t2, 30(t1)
  /* desc 2: the status byte, device-writable. */
  la t0, status
  li t2, 0xff
  sb t2, 0(t0)
  sd t0, 32(t1)
  li t2, 1
  sw t2, 40(t1)
  li t2, DESC_WRITE
  sh t2, 44(t1)
  sh zero, 46(t1)
  /* Make chain 0 available. */
  la t1, avail
  lhu t2, 2(t1)
  andi t3, t2, QSIZE - 1
  slli t3, t3, 1
  add t3, t3, t1
  sh zero, 4(t3)
  fence w, w
  addi t2, t2, 1
  sh t2, 2(t1)
  fence w, o
  sw zero, QUEUE_NOTIFY(s0)
  /* Wait until the device used it. */
  la t1, used
1:
  fence i, r
  lhu t3, 2(t1)
  bne t3, t2, 1b
  fence r, r
  la t0, status
  lbu a0, 0(t0)
  ret

  /* The code DMA overwrites, alone on its page. */
  .align 12
target:
  /* The first instruction is fetched afresh on entry from another page; the
   * ones after it come from whatever the hart decoded for this page before. */
  mv a0, zero
  li a0, 1
  ret
  .align 12

  .data
  .align 12
  /* The replacement, a whole sector. */
newcode:
  mv a0, zero
  li a0, 2
  ret
  .align 9
desc:
  .fill QSIZE * 16, 1, 0
avail:
  .fill 4 + 2 * QSIZE, 1, 0
  .align 2
used:
  .fill 4 + 8 * QSIZE, 1, 0
  .align 4
header:
  .fill 16, 1, 0
status:
  .byte 0
