; A debuggee for gdb (tests/tests/x86_debug.rs): long mode, then a loop that
; calls `work` three times with RCX = 0, 1, 2. `work` sits at a fixed address,
; ROM + 0x4000 (linear 0xF4000), so the test can name it without symbols; it
; stores RCX at COUNTER, copies it to COPY with MOVSQ and goes through the
; stack with PUSH and POP. Passes (exit 0) when COPY holds 2 at the end.
%include "common.inc"
%include "pm.inc"

%define PML4 0x10000
%define PDPT 0x11000
%define PDIR 0x12000
%define COUNTER 0x600
%define COPY 0x608

main32:
    ; The first 4 MiB identity-mapped with two 2 MiB pages.
    mov edi, PML4
    xor eax, eax
    mov ecx, 3 * 1024
    rep stosd
    mov dword [PML4], PDPT | 3
    mov dword [PDPT], PDIR | 3
    mov dword [PDIR], 0x83
    mov dword [PDIR + 8], 0x200000 | 0x83
    mov eax, PML4
    mov cr3, eax
    mov eax, cr4
    or eax, 0x20                ; PAE
    mov cr4, eax
    mov ecx, 0xC0000080         ; EFER.LME
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp CODE64:(ROM + long_start)

bits 64
long_start:
    mov ax, DATA64
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, KSTACK
    mov qword [COUNTER], 0
    mov qword [COPY], 0
    xor ecx, ecx
.loop:
    mov rax, ROM + work
    call rax
    inc ecx
    cmp ecx, 3
    jne .loop
    cmp qword [COPY], 2
    jne .fail
    EXIT 0
.fail:
    EXIT 1

    times 0x4000 - ($ - $$) db 0xCC
work:
    mov [COUNTER], rcx
    mov rsi, COUNTER
    mov rdi, COPY
    movsq
    push rcx
    pop rdx
    ret

RESET_VECTOR start
