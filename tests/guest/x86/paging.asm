; 32-bit paging: not-present and write-protect page faults with their error
; codes and CR2, 4 MiB pages (PSE), INVLPG, and the accessed and dirty bits.
%include "common.inc"
%include "pm.inc"

%define PD 0x10000
%define PT 0x11000
%define P  1
%define RW 2
%define US 4
%define PS 0x80

main32:
    mov eax, 14
    mov ebx, ROM + on_pf
    mov dl, 0x8E
    call set_gate
    ; The first 4 MiB in 4 KiB pages, identity; 0x200000 absent,
    ; 0x201000 read-only.
    xor ecx, ecx
.map:
    mov eax, ecx
    shl eax, 12
    or eax, P | RW | US
    mov [PT + ecx * 4], eax
    inc ecx
    cmp ecx, 1024
    jne .map
    mov dword [PT + 0x200 * 4], 0
    and dword [PT + 0x201 * 4], ~RW
    mov edi, PD
    xor eax, eax
    mov ecx, 1024
    rep stosd
    mov dword [PD], PT | P | RW | US
    ; 0x800000: a 4 MiB page onto physical 0.
    mov dword [PD + 2 * 4], 0 | P | RW | PS
    mov eax, PD
    mov cr3, eax
    mov eax, cr4
    or eax, 0x10                ; PSE
    mov cr4, eax
    mov eax, cr0
    or eax, 0x80010000          ; PG, WP
    mov cr0, eax
    POST 0x03

    ; A read of an absent page: error code 0, CR2 the address.
    mov dword [SEEN], 0
    mov ebx, 0x200000
    mov eax, [ebx]              ; two bytes
    cmp dword [SEEN], 14
    jne fail_absent
    cmp dword [ERROR], 0
    jne fail_absent_code
    cmp dword [SCRATCH], 0x200000
    jne fail_cr2

    ; A supervisor write to a read-only page with CR0.WP: present | write.
    mov dword [SEEN], 0
    mov ebx, 0x201000
    mov [ebx], eax              ; two bytes
    cmp dword [SEEN], 14
    jne fail_wp
    cmp dword [ERROR], 3
    jne fail_wp_code
    POST 0x04

    ; The 4 MiB page aliases physical 0.
    mov dword [0x600], 0xCAFEF00D
    cmp dword [0x800600], 0xCAFEF00D
    jne fail_pse

    ; INVLPG: remap 0x202000 onto physical 0x5000.
    mov dword [0x5000], 0x11111111
    mov dword [0x202000], 0x22222222
    cmp dword [0x202000], 0x22222222
    jne fail_invlpg
    mov dword [PT + 0x202 * 4], 0x5000 | P | RW | US
    invlpg [0x202000]
    cmp dword [0x202000], 0x11111111
    jne fail_invlpg
    POST 0x05

    ; Accessed and dirty: a read sets A, a write sets D.
    mov eax, [0x203000]
    mov eax, [PT + 0x203 * 4]
    test eax, 0x20
    jz fail_accessed
    test eax, 0x40
    jnz fail_dirty
    mov dword [0x204000], 1
    mov eax, [PT + 0x204 * 4]
    test eax, 0x40
    jz fail_dirty
    EXIT 0

on_pf:
    pop dword [ERROR]
    mov dword [SEEN], 14
    mov eax, cr2
    mov [SCRATCH], eax
    add dword [esp], 2
    iret

fail_absent:
    EXIT 0x21
fail_absent_code:
    EXIT 0x22
fail_cr2:
    EXIT 0x23
fail_wp:
    EXIT 0x24
fail_wp_code:
    EXIT 0x25
fail_pse:
    EXIT 0x26
fail_invlpg:
    EXIT 0x27
fail_accessed:
    EXIT 0x28
fail_dirty:
    EXIT 0x29

RESET_VECTOR start
