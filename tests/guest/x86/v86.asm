; Virtual-8086 mode: entered with IRET (EFLAGS.VM), real-mode addressing at
; level 3, INT n with IOPL 3 through the IDT to a 32-bit handler (the v86
; segment registers pushed and cleared), IRET back into v86 mode, and #GP for
; HLT, whose handler ends the test.
%include "common.inc"
%include "pm.inc"

%define V86_CS 0x0900           ; v86 code copied to 0x9000
%define V86_SS 0x0800
%define MARK 0x600
%define SEEN_DS 0x604

main32:
    mov eax, 13
    mov ebx, ROM + on_gp
    mov dl, 0x8E
    call set_gate
    mov eax, 0x30
    mov ebx, ROM + on_int
    mov dl, 0xEE                ; interrupt gate, DPL 3
    call set_gate
    mov dword [TSS_BASE + 4], KSTACK
    mov dword [TSS_BASE + 8], DATA0
    mov word [TSS_BASE + 102], 104
    mov ax, TSS
    ltr ax
    ; The v86 code runs from RAM at 0x9000.
    mov esi, ROM + v86_code
    mov edi, V86_CS << 4
    mov ecx, v86_end - v86_code
    rep movsb
    mov dword [MARK], 0
    ; IRET to v86: GS, FS, DS, ES, SS, ESP, EFLAGS (VM, IOPL 3), CS, EIP.
    push dword 0
    push dword 0
    push dword 0x1234
    push dword 0
    push dword V86_SS
    push dword 0x100
    push dword 0x23002
    push dword V86_CS
    push dword 0
    iret

bits 16
v86_code:
    ; Real-mode addressing: DS=0x1234 reaches 0x12340.
    mov word [0], 0xBEEF
    mov ax, 0x1111
    int 0x30                    ; to the 32-bit handler and back
    cmp ax, 0x2222
    jne .wrong
    hlt                         ; #GP(0) at level 3: the end
.wrong:
    mov ax, 0xdead
    int 0x30
v86_end:
bits 32

on_int:
    ; From v86: EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS on the level-0 stack.
    cmp ax, 0xdead
    je fail_v86
    test dword [ss:esp + 8], 0x20000
    jz fail_frame
    cmp dword [ss:esp + 24], 0x1234    ; the v86 DS
    jne fail_frame
    ; DS is null now: the v86 data is reached through SS (flat).
    cmp word [ss:0x12340], 0xBEEF
    jne fail_address
    mov ax, 0x2222
    inc dword [ss:MARK]
    iret

on_gp:
    ; HLT in v86 mode: error code 0, the frame says VM.
    cmp dword [ss:esp], 0
    jne fail_gp
    test dword [ss:esp + 12], 0x20000
    jz fail_gp
    cmp dword [ss:MARK], 1
    jne fail_mark
    EXIT 0

fail_v86:
    EXIT 0x61
fail_frame:
    EXIT 0x62
fail_address:
    EXIT 0x63
fail_gp:
    EXIT 0x64
fail_mark:
    EXIT 0x65

RESET_VECTOR start
