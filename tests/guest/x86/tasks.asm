; Hardware task switches: CALL to a TSS (the new task runs nested, with NT
; and the back link set) and IRET back; an interrupt through a task gate;
; busy bits and CR0.TS along the way; a CALL to a 286-style 16-bit TSS.
%include "common.inc"
%include "pm.inc"

%define TSS_A 0x3000            ; the first task's (TSS selector 0x28 in pm.inc)
%define TSS_B 0x3100
%define TSS_C 0x3200
%define SEL_B 0x58
%define SEL_C 0x60
%define SEL_D 0x68              ; a 16-bit TSS
%define CODE_ROM 0x70           ; 32-bit code based at the ROM (for a 16-bit IP)
%define TSS_D 0x3300
%define AX_SEEN 0x60C
%define MARK 0x600
%define LINK_SEEN 0x604
%define FLAGS_SEEN 0x608

main32:
    ; Two more TSS descriptors after pm.inc's GDT (which ends at 0x58).
    mov dword [GDT_BASE + SEL_B], (TSS_B << 16) | 0x67
    mov dword [GDT_BASE + SEL_B + 4], 0x00008900
    mov dword [GDT_BASE + SEL_C], (TSS_C << 16) | 0x67
    mov dword [GDT_BASE + SEL_C + 4], 0x00008900
    mov dword [GDT_BASE + SEL_D], (TSS_D << 16) | 0x2B
    mov dword [GDT_BASE + SEL_D + 4], 0x00008100
    mov dword [GDT_BASE + CODE_ROM], 0x0000FFFF
    mov dword [GDT_BASE + CODE_ROM + 4], 0x00409A0F
    lgdt [ROM + gdtr_tasks]
    ; The tasks' states: flat segments, their own stacks.
    mov edi, TSS_B
    mov ebx, ROM + task_b
    mov ecx, 0x7800
    call fill_tss
    mov edi, TSS_C
    mov ebx, ROM + task_c
    mov ecx, 0x7400
    call fill_tss
    mov ax, TSS
    ltr ax
    ; Vector 0x40 is a task gate to task C.
    mov dword [IDT_BASE + 0x40 * 8], SEL_C << 16
    mov dword [IDT_BASE + 0x40 * 8 + 4], 0x8500
    POST 0x03

    mov dword [MARK], 0
    call SEL_B:0
    cmp dword [MARK], 0xB
    jne fail_call
    cmp dword [LINK_SEEN], TSS
    jne fail_link
    test dword [FLAGS_SEEN], 0x4000
    jz fail_nt
    ; Back in A: B is available again, A stayed busy; CR0.TS is set.
    test byte [GDT_BASE + SEL_B + 5], 2
    jnz fail_busy
    test byte [GDT_BASE + TSS + 5], 2
    jz fail_busy
    mov eax, cr0
    test eax, 8
    jz fail_ts
    clts
    POST 0x04

    mov dword [MARK], 0
    int 0x40
    cmp dword [MARK], 0xC
    jne fail_gate
    POST 0x05

    ; A 16-bit TSS: IP, FLAGS, the eight registers, ES, CS, SS, DS, LDT.
    mov edi, TSS_D
    xor eax, eax
    mov ecx, 11
    rep stosd
    mov word [TSS_D + 14], task_d   ; IP (offset in the ROM segment)
    mov word [TSS_D + 16], 2        ; FLAGS
    mov word [TSS_D + 18], 0x1234   ; AX
    mov word [TSS_D + 26], 0x7000   ; SP
    mov word [TSS_D + 34], DATA0    ; ES
    mov word [TSS_D + 36], CODE_ROM ; CS
    mov word [TSS_D + 38], DATA0    ; SS
    mov word [TSS_D + 40], DATA0    ; DS
    clts
    mov dword [MARK], 0
    mov ebx, 0x5555AAAA
    call SEL_D:0
    cmp dword [MARK], 0xD
    jne fail_task16
    cmp word [AX_SEEN], 0x1234
    jne fail_task16_regs
    cmp word [TSS_D], TSS           ; the back link
    jne fail_task16_link
    cmp ebx, 0x5555AAAA             ; A's registers came back from its TSS
    jne fail_task16_regs
    test byte [GDT_BASE + SEL_D + 5], 2
    jnz fail_busy
    EXIT 0

task_b:
    mov dword [MARK], 0xB
    mov ax, [TSS_B]
    movzx eax, ax
    mov [LINK_SEEN], eax
    pushfd
    pop dword [FLAGS_SEEN]
    iret
    jmp task_b

task_c:
    mov dword [MARK], 0xC
    iret
    jmp task_c

task_d:
    mov dword [MARK], 0xD
    mov [AX_SEEN], ax
    xor ebx, ebx
    iret
    jmp task_d

; EDI = TSS, EBX = EIP, ECX = ESP.
fill_tss:
    push edi
    xor eax, eax
    push ecx
    mov ecx, 26
    rep stosd
    pop ecx
    pop edi
    mov [edi + 32], ebx         ; EIP
    mov dword [edi + 36], 2     ; EFLAGS
    mov [edi + 56], ecx         ; ESP
    mov dword [edi + 72], DATA0 ; ES
    mov dword [edi + 76], CODE0 ; CS
    mov dword [edi + 80], DATA0 ; SS
    mov dword [edi + 84], DATA0 ; DS
    mov dword [edi + 88], DATA0 ; FS
    mov dword [edi + 92], DATA0 ; GS
    mov word [edi + 102], 104
    ret

fail_call:
    EXIT 0x51
fail_link:
    EXIT 0x52
fail_nt:
    EXIT 0x53
fail_busy:
    EXIT 0x54
fail_ts:
    EXIT 0x55
fail_gate:
    EXIT 0x56
fail_task16:
    EXIT 0x57
fail_task16_regs:
    EXIT 0x58
fail_task16_link:
    EXIT 0x59

gdtr_tasks:
    dw CODE_ROM + 7
    dd GDT_BASE

RESET_VECTOR start
