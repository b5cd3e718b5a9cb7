#!/usr/bin/perl
# make-bench-mmdb.pl DIR [NETWORKS] — write bench-city.mmdb and bench-asn.mmdb,
# MaxMind DB files shaped like the real GeoLite2 ones, for
# geoip/benches/lookup.rs: NETWORKS (default 200000) pseudo-random IPv4 /24s
# and as many IPv6 /48s, each pointing at one of 2000 distinct City records
# with GeoLite2-City's full layout (names in eight languages for continent,
# country, registered country, subdivision and city; postal code; location
# with accuracy radius, metro code and time zone). The data is made up and
# means nothing; only its shape and size matter. Deterministic (fixed seed,
# fixed build_epoch, the writer sorts map keys). Needs
# libmaxmind-db-writer-perl; takes ~20 s for the default size (two files of ~45 MB).
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my ( $dir, $count ) = @ARGV;
die "usage: $0 DIR [NETWORKS]\n" unless defined $dir && -d $dir;
$count //= 200_000;

my %TYPES = (
    accuracy_radius => 'uint16', autonomous_system_number => 'uint32',
    autonomous_system_organization => 'utf8_string', city => 'map', code => 'utf8_string',
    continent => 'map', country => 'map', geoname_id => 'uint32',
    is_in_european_union => 'boolean', iso_code => 'utf8_string', latitude => 'double',
    location => 'map', longitude => 'double', metro_code => 'uint16', names => 'map',
    postal => 'map', registered_country => 'map', subdivisions => [ 'array', 'map' ],
    time_zone => 'utf8_string',
    map { $_ => 'utf8_string' } qw(de en es fr ja pt-BR ru zh-CN),
);

srand(20240101);
sub names { my $n = shift; return { map { $_ => "$n ($_)" } qw(de en es fr ja pt-BR ru zh-CN) } }
sub place {
    my $i = shift;
    my $country = { geoname_id => 1000 + $i % 200, iso_code => sprintf( '%c%c', 65 + $i % 26, 65 + int( $i / 26 ) % 26 ),
        names => names("Country $i"), is_in_european_union => 1 };
    return {
        city      => { geoname_id => 500_000 + $i, names => names("City $i") },
        continent => { code => 'EU', geoname_id => 6255148, names => names('Europe') },
        country   => $country,
        location  => { accuracy_radius => 5 + $i % 500, latitude => -60 + ( $i * 7 ) % 120 + 0.1234,
            longitude => -170 + ( $i * 13 ) % 340 + 0.5678, metro_code => $i % 900, time_zone => 'Europe/Paris' },
        postal             => { code => sprintf( '%05d', $i ) },
        registered_country => $country,
        subdivisions       => [ { geoname_id => 300_000 + $i, iso_code => 'XX', names => names("Region $i") } ],
    };
}
my @records = map { place($_) } 0 .. 1999;

sub tree {
    my $type = shift;
    return MaxMind::DB::Writer::Tree->new(
        ip_version => 6, record_size => 28, database_type => $type, languages => [qw(de en es fr ja pt-BR ru zh-CN)],
        description => { en => "stepup benchmark data ($type), made up" },
        map_key_type_callback => sub { $TYPES{ $_[0] } // die "no type for $_[0]\n" },
        alias_ipv6_to_ipv4 => 1, remove_reserved_networks => 0, _build_epoch => 1_704_067_200,
    );
}
my ( $city, $asn ) = ( tree('GeoLite2-City'), tree('GeoLite2-ASN') );
# The documentation addresses the benchmark looks up first.
$city->insert_network( '192.0.2.0/24', $records[0] );
$asn->insert_network( '192.0.2.0/24', { autonomous_system_number => 64496, autonomous_system_organization => 'Example AS 0' } );
for my $n ( 1 .. $count ) {
    my $i = int( rand(2000) );
    my $v4 = sprintf( '%d.%d.%d.0/24', 1 + int( rand(223) ), int( rand(256) ), int( rand(256) ) );
    my $v6 = sprintf( '2%03x:%x:%x::/48', int( rand(4096) ), int( rand(65536) ), int( rand(65536) ) );
    my $as = { autonomous_system_number => 64496 + $i % 16, autonomous_system_organization => "Example AS $i" };
    for my $net ( $v4, $v6 ) {
        next if $net =~ /^(?:2001:|2002:)/;    # aliased to IPv4 in these trees
        $city->insert_network( $net, $records[$i] );
        $asn->insert_network( $net, $as );
    }
}
for ( [ $city, 'bench-city.mmdb' ], [ $asn, 'bench-asn.mmdb' ] ) {
    my ( $tree, $file ) = @$_;
    open my $fh, '>:raw', "$dir/$file.tmp" or die "$dir/$file.tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$dir/$file.tmp: $!\n";
    rename "$dir/$file.tmp", "$dir/$file" or die "rename: $!\n";
}
