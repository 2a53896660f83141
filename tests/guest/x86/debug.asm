; Debugging support: single-step traps (TF), an instruction breakpoint (DR0,
; resumed with RF) and a data write breakpoint (DR1), with DR6 saying which.
%include "common.inc"
%include "pm.inc"

%define STEPS 0x600
%define DR6_SEEN 0x604
%define WATCHED 0x608

main32:
    mov eax, 1
    mov ebx, ROM + on_debug
    mov dl, 0x8E
    call set_gate

    ; Single steps: TF set by POPFD traps after each following instruction,
    ; the POPFD that clears it included: six traps.
    mov dword [STEPS], 0
    pushfd
    or dword [esp], 0x100
    popfd
    nop
    nop
    nop
    pushfd
    and dword [esp], ~0x100
    popfd
    cmp dword [STEPS], 6
    jne fail_steps
    test dword [DR6_SEEN], 0x4000
    jz fail_bs
    POST 0x03

    ; An instruction breakpoint on `target`: a fault before it runs; the
    ; handler sets RF so it runs on return.
    mov dword [STEPS], 0
    mov eax, ROM + target
    mov dr0, eax
    mov eax, 0x1                ; L0, execute, 1 byte
    mov dr7, eax
    xor ecx, ecx
target:
    inc ecx
    xor eax, eax
    mov dr7, eax
    cmp dword [STEPS], 1
    jne fail_break
    cmp ecx, 1
    jne fail_break
    test dword [DR6_SEEN], 1
    jz fail_break_dr6
    POST 0x04

    ; A data breakpoint on writes to WATCHED: a trap after the store.
    mov dword [STEPS], 0
    mov eax, WATCHED
    mov dr1, eax
    mov eax, 0x4 | (1 << 20) | (3 << 22)    ; L1, write, 4 bytes
    mov dr7, eax
    mov eax, [WATCHED]          ; a read: no trap
    mov dword [WATCHED], 0x1234 ; a write: trap
    xor eax, eax
    mov dr7, eax
    cmp dword [STEPS], 1
    jne fail_watch
    test dword [DR6_SEEN], 2
    jz fail_watch_dr6
    EXIT 0

on_debug:
    inc dword [STEPS]
    push eax
    mov eax, dr6
    mov [DR6_SEEN], eax
    ; Instruction breakpoints are faults: resume with RF so it runs once.
    test eax, 1
    jz .done
    or dword [esp + 12], 0x10000
.done:
    xor eax, eax
    mov dr6, eax
    pop eax
    iret

fail_steps:
    EXIT 0x41
fail_bs:
    EXIT 0x42
fail_break:
    EXIT 0x43
fail_break_dr6:
    EXIT 0x44
fail_watch:
    EXIT 0x45
fail_watch_dr6:
    EXIT 0x46

RESET_VECTOR start
