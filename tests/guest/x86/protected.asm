; Protected mode: a GDT and an IDT, exceptions with their error codes, level 3
; entered with IRET, a DPL-3 trap gate back to level 0 with the stack taken
; from the TSS, and #GP for a privileged instruction at level 3.
%include "common.inc"

%define CODE0 0x08
%define DATA0 0x10
%define CODE3 0x18
%define DATA3 0x20
%define TSS   0x28

org 0
bits 16
start:
    cli
    POST 0x01
    xor ax, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    mov ax, cs
    mov ds, ax
    ; The GDT goes to RAM: the CPU writes accessed and busy bits into it.
    mov si, gdt
    mov di, GDT_BASE
    mov cx, gdt_end - gdt
    cld
    rep movsb
    lgdt [gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword CODE0:(ROM + pm_start)

bits 32
pm_start:
    mov ax, DATA0
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, KSTACK
    POST 0x02
    ; Every vector to `unexpected`, then the ones the test takes.
    xor ecx, ecx
.fill:
    mov eax, ecx
    mov ebx, ROM + unexpected
    mov dl, 0x8E
    call set_gate
    inc ecx
    cmp ecx, 256
    jne .fill
    mov eax, 6
    mov ebx, ROM + on_ud
    mov dl, 0x8E
    call set_gate
    mov eax, 13
    mov ebx, ROM + on_gp
    mov dl, 0x8E
    call set_gate
    mov eax, 0x80
    mov ebx, ROM + on_call
    mov dl, 0xEF                ; trap gate, DPL 3
    call set_gate
    lidt [ROM + idtr]
    POST 0x03

    ; #UD: the handler steps over UD2.
    mov dword [SEEN], 0
    ud2
    cmp dword [SEEN], 6
    jne fail_ud

    ; #GP with the selector as error code: index 15 is past the GDT's limit.
    mov dword [SEEN], 0
    mov ax, 0x78 | 3
    mov ds, ax                  ; two bytes, which the handler steps over
    cmp dword [SEEN], 13
    jne fail_gp
    cmp dword [ERROR], 0x78
    jne fail_gp_code
    POST 0x04

    ; Level 3 through IRET; the TSS holds level 0's stack for the way back.
    mov dword [TSS_BASE + 4], KSTACK
    mov dword [TSS_BASE + 8], DATA0
    mov word [TSS_BASE + 102], 104
    mov ax, TSS
    ltr ax
    push dword DATA3 | 3
    push dword USTACK
    push dword 0x202
    push dword CODE3 | 3
    push dword ROM + user
    iret

user:
    mov ax, DATA3 | 3
    mov ds, ax
    mov es, ax
    mov eax, 0x1234
    int 0x80
    cmp eax, 0x5678
    jne .wrong
    ; CLI at level 3 with IOPL 0: #GP(0), whose handler ends the test.
    cli
.wrong:
    mov eax, 0xdead
    int 0x80

on_call:
    cmp eax, 0xdead
    je fail_user
    cmp dword [ss:esp + 4], CODE3 | 3
    jne fail_frame
    cmp dword [ss:esp + 16], DATA3 | 3
    jne fail_frame
    cmp esp, KSTACK - 20
    jne fail_stack
    mov eax, 0x5678
    iret

on_ud:
    mov dword [ss:SEEN], 6
    add dword [ss:esp], 2
    iret

on_gp:
    pop dword [ss:ERROR]
    mov dword [ss:SEEN], 13
    cmp dword [ss:esp + 4], CODE3 | 3
    je .from_user
    add dword [ss:esp], 2
    iret
.from_user:
    cmp dword [ss:ERROR], 0
    jne fail_user_gp
    cmp esp, KSTACK - 20
    jne fail_stack
    EXIT 0

unexpected:
    EXIT 0x1f
fail_ud:
    EXIT 0x11
fail_gp:
    EXIT 0x12
fail_gp_code:
    EXIT 0x13
fail_user:
    EXIT 0x14
fail_frame:
    EXIT 0x15
fail_stack:
    EXIT 0x16
fail_user_gp:
    EXIT 0x17

; EAX = vector, EBX = handler, DL = type and attributes.
set_gate:
    lea edi, [IDT_BASE + eax * 8]
    mov [edi], bx
    mov word [edi + 2], CODE0
    mov byte [edi + 4], 0
    mov [edi + 5], dl
    shr ebx, 16
    mov [edi + 6], bx
    ret

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF       ; CODE0
    dq 0x00CF92000000FFFF       ; DATA0
    dq 0x00CFFA000000FFFF       ; CODE3
    dq 0x00CFF2000000FFFF       ; DATA3
    dq 0x0000890030000067       ; TSS at 0x3000
gdt_end:
gdtr:
    dw gdt_end - gdt - 1
    dd GDT_BASE
idtr:
    dw 256 * 8 - 1
    dd IDT_BASE

RESET_VECTOR start
