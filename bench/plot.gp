# gnuplot -e "raw='target/bench'; out='bench/results.png'" bench/plot.gp
set terminal pngcairo size 1400,560 font "DejaVu Sans,11"
set output out
set multiplot layout 1,2 title "stepup benchmarks (make bench)"

set title "1. Latency per authentication (pam\\_start → pam\\_end), distribution"
set xlabel "milliseconds (log scale)"
set ylabel "fraction of authentications ≤ x"
set logscale x
set xrange [0.5:30]
set grid
set key bottom right
set yrange [0:1]
plot raw.'/auth/pam_permit.cdf' using 1:2 with lines lw 2 title "pam\\_permit (floor)", \
     raw.'/auth/pam_google_authenticator.cdf' using 1:2 with lines lw 2 title "pam\\_google\\_authenticator", \
     raw.'/auth/pam_oath.cdf' using 1:2 with lines lw 2 title "pam\\_oath", \
     raw.'/auth/stepup_allow.cdf' using 1:2 with lines lw 2 title "stepup allow", \
     raw.'/auth/stepup_totp.cdf' using 1:2 with lines lw 2 title "stepup TOTP"

set title "2. Concurrent clients (closed loop): latency percentiles"
set xlabel "concurrent clients"
set ylabel "milliseconds (log scale)"
set logscale xy
set xrange [0.8:320]
set yrange [*:*]
set key top left
set xtics (1, 16, 64, 256)
plot raw.'/conc/plot.dat' using 1:2 with linespoints lw 2 pt 7 title "stepup allow p50", \
     raw.'/conc/plot.dat' using 1:3 with linespoints lw 2 pt 7 title "stepup allow p99", \
     raw.'/conc/plot.dat' using 1:4 with linespoints lw 2 dt 2 pt 6 title "pam\\_permit p50", \
     raw.'/conc/plot.dat' using 1:5 with linespoints lw 2 dt 2 pt 6 title "pam\\_permit p99", \
     50 with lines lc rgb "red" dt 3 title "50 ms goal"
unset multiplot
