; The x87 as an operating system sees it: #NM from CR0.TS and CR0.EM, FNINIT's
; state, arithmetic through memory, FNSTENV's protected-mode layout, FNSAVE
; and FRSTOR, FXSAVE's x87 part, and an unmasked exception reported as #MF
; by the next waiting instruction (not by FNSTSW) with CR0.NE set.
%include "common.inc"
%include "pm.inc"

%define ENV 0x600               ; FNSTENV image (28 bytes)
%define SAVE 0x700              ; FNSAVE image (108 bytes)
%define FXAREA 0x800            ; FXSAVE image (512 bytes, aligned)
%define RESULT 0xA00
%define HANDLED 0xA10

main32:
    mov eax, 7
    mov ebx, ROM + on_nm
    mov dl, 0x8E
    call set_gate
    mov eax, 16
    mov ebx, ROM + on_mf
    mov dl, 0x8E
    call set_gate
    mov dword [HANDLED], 0

    ; #NM: with CR0.TS an x87 instruction faults; the handler clears TS and
    ; the instruction runs again.
    mov eax, cr0
    and eax, ~0x4               ; EM off
    or eax, 0x8 | 0x20 | 0x2    ; TS, NE, MP
    mov cr0, eax
    mov dword [SEEN], 0xff
    fninit
    cmp dword [SEEN], 7
    jne fail_nm
    mov dword [SEEN], 0xff
    fld1                        ; TS is clear now
    cmp dword [SEEN], 0xff
    jne fail_nm
    POST 0x03

    ; FNINIT: control word 0x037F, status 0, every tag empty.
    fninit
    fnstcw [RESULT]
    cmp word [RESULT], 0x037F
    jne fail_init
    fnstsw ax
    test ax, ax
    jnz fail_init
    fnstenv [ENV]
    cmp word [ENV + 8], 0xFFFF  ; tag word
    jne fail_init
    POST 0x04

    ; Arithmetic: (1 + pi) / 2 stored as a double, and an integer round trip.
    fld1
    fldpi
    faddp st1, st0
    fld1
    fadd st0, st0
    fdivp st1, st0
    fstp qword [RESULT]
    cmp dword [RESULT], 0xAA22168C     ; (1 + pi) / 2 = 0x400090FDAA22168C
    jne fail_arith
    cmp dword [RESULT + 4], 0x400090FD
    jne fail_arith
    mov dword [RESULT], -12345
    fild dword [RESULT]
    fchs
    fistp dword [RESULT + 4]
    cmp dword [RESULT + 4], 12345
    jne fail_arith
    fnstsw ax
    and ax, 0x3800              ; TOP back to 0
    jnz fail_arith
    POST 0x05

    ; FNSTENV in 32-bit protected mode: control, status (TOP = 6 after two
    ; pushes), tags (R6 zero, R7 valid).
    fninit
    fldcw [ROM + unmask_ze]
    fld1
    fldz
    fnstenv [ENV]
    cmp word [ENV], 0x037B
    jne fail_env
    mov ax, [ENV + 4]
    and ax, 0x3800
    cmp ax, 6 << 11
    jne fail_env_top
    cmp word [ENV + 8], 0x1FFF  ; R6 zero (01), R7 valid (00)
    jne fail_env_tags
    ; (Intel's FNSTENV then masks every exception; QEMU's does not, so that
    ; is not checked here.)
    fldcw [ROM + mask_all]
    POST 0x06

    ; FNSAVE stores the registers and reinitialises; FRSTOR brings them back.
    fninit
    fldpi
    fld1
    fnsave [SAVE]
    fnstsw ax
    test ax, 0x3800
    jnz fail_save
    fnstenv [ENV]
    cmp word [ENV + 8], 0xFFFF
    jne fail_save
    frstor [SAVE]
    fstp qword [RESULT]         ; 1.0
    fstp qword [RESULT + 8]     ; pi
    cmp dword [RESULT + 4], 0x3FF00000
    jne fail_save
    cmp dword [RESULT + 12], 0x400921FB
    jne fail_save
    POST 0x07

    ; FXSAVE: control word, the abridged tag byte (R7 in use) and ST0 at 32.
    mov eax, cr4
    or eax, 0x200               ; OSFXSR
    mov cr4, eax
    fninit
    fld1
    fxsave [FXAREA]
    cmp word [FXAREA], 0x037F
    jne fail_fxsave
    cmp byte [FXAREA + 4], 0x80
    jne fail_fxsave
    cmp dword [FXAREA + 36], 0x80000000
    jne fail_fxsave
    cmp word [FXAREA + 40], 0x3FFF
    jne fail_fxsave
    POST 0x08

    ; An unmasked divide by zero: FDIVP leaves its operands, sets ES; FNSTSW
    ; reads it without a fault; the next waiting instruction raises #MF.
    fninit
    fldcw [ROM + unmask_ze]
    fld1
    fldz
    fdivp st1, st0
    fnstsw ax
    test ax, 0x0004             ; ZE
    jz fail_mf1
    test ax, 0x0080             ; ES
    jz fail_mf2
    cmp dword [HANDLED], 0
    jne fail_mf3
    mov dword [SEEN], 0xff
    fwait
    cmp dword [SEEN], 16
    jne fail_mf4
    cmp dword [HANDLED], 1
    jne fail_mf5
    ; (Intel's FDIVP leaves its operands when the exception is unmasked;
    ; QEMU's stores the infinity and pops, so that is left to the unit tests.)
    fninit
    POST 0x09

    ; FCOMI sets ZF, PF, CF; FCMOVB moves on CF.
    fninit
    fld1
    fldz                        ; ST0 = 0, ST1 = 1
    fcomi st0, st1              ; 0 < 1: CF
    jnc fail_compare
    jz fail_compare
    fcmovb st0, st1             ; CF set: ST0 = 1
    fstp dword [RESULT]
    cmp dword [RESULT], 0x3F800000
    jne fail_compare
    EXIT 0

on_nm:
    mov dword [SEEN], 7
    clts
    iretd

on_mf:
    mov dword [SEEN], 16
    inc dword [HANDLED]
    fnclex
    iretd

unmask_ze:
    dw 0x037B
mask_all:
    dw 0x037F

fail_nm:
    EXIT 0x21
fail_init:
    EXIT 0x22
fail_arith:
    EXIT 0x23
fail_env:
    EXIT 0x24
fail_env_top:
    EXIT 0x29
fail_env_tags:
    EXIT 0x2A
fail_save:
    EXIT 0x25
fail_fxsave:
    EXIT 0x26
fail_mf:
    EXIT 0x27
fail_mf1:
    EXIT 0x31
fail_mf2:
    EXIT 0x32
fail_mf3:
    EXIT 0x33
fail_mf4:
    EXIT 0x34
fail_mf5:
    EXIT 0x35
fail_compare:
    EXIT 0x28

    RESET_VECTOR start
