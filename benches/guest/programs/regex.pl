# The perl reproducer of issue 16: a substitution with a capture on every
# number of a generated record, then the total length.
my $n = 0;
for my $i (1 .. 40000) {
    my $l = "id=$i name=user" . ($i * 7 % 1000) . " mail=u$i\@ex" . ($i % 97) . ".org val=" . ($i * 13 % 10007);
    (my $t = $l) =~ s/(\d+)/<$1>/g;
    $n += length $t;
}
print "RESULT perl $n\n";
