Feature: Recording exchanges and releases as they happen
  As a case worker recording a handover on the day it happens,
  I want the exchange written on every person in it at once, with what was traded and what each side announced,
  so that nobody is counted as back who did not come, nobody is sent home against their will,
  and an auditor can later set the register's figures beside the parties' own.

  Background:
    Given the case worker has opened the negotiation "Talks on the held" between AM and AZ, mediated by RU, on the principle "all for all", on 2021-06-01

  Scenario: People traded for minefield maps
    Given the case worker has recorded that AZ captured "Aram Testyan", "Narek Probyan" and "Vahe Samplov", prisoners of war of AM, at "Hadrut" on 2020-11-09
    And the case worker has recorded the agreement of 2021-06-20 by which AZ hands "Aram Testyan", "Narek Probyan" and "Vahe Samplov" over to AM, in return for "maps of the minefields around Aghdam" from AM to AZ
    When the case worker records the exchange on 2021-07-03 at "the border near Sadarak", mediated by RU, under agreement 1 of the negotiation, in return for "maps of the minefields around Aghdam" from AM to AZ, in which AZ hands "Aram Testyan", "Narek Probyan" and "Vahe Samplov" over to AM
    Then the register answers 201
    And the exchange records 3 handed over by AZ to AM, 0 refused and 0 absent
    And the exchange records "maps of the minefields around Aghdam" given by AM to AZ
    And the negotiation's agreement 1 has AZ hand "Aram Testyan", "Narek Probyan" and "Vahe Samplov" over to AM, in return for "maps of the minefields around Aghdam" from AM to AZ
    And "Aram Testyan", "Narek Probyan" and "Vahe Samplov" are "repatriated", held by nobody
    And the history of "Aram Testyan" ends with "handed_over", pointing to the exchange
    And the reconciliation lists "Aram Testyan", "Narek Probyan" and "Vahe Samplov" as handed over
    And the reconciliation lists "Aram Testyan", "Narek Probyan" and "Vahe Samplov" as handed over without a willingness check
    And the reconciliation lists nobody as outstanding

  Scenario: A person who refuses repatriation is not handed over, and stays outstanding
    Given the case worker has recorded that AZ captured "Aram Testyan" and "Narek Probyan", prisoners of war of AM, at "Hadrut" on 2020-11-09
    And the case worker has recorded that the ICRC found "Aram Testyan" willing to be repatriated, in a private interview on 2021-07-01
    And the case worker has recorded that the ICRC found "Narek Probyan" unwilling to be repatriated, in a private interview on 2021-07-01
    And the auditor has noted how many events the register holds
    When the case worker records the exchange on 2021-07-03 at "the border near Sadarak", mediated by RU, in the negotiation, in which AZ hands "Aram Testyan" and "Narek Probyan" over to AM
    Then the register answers 409 "invalid-transition"
    And the answer names the case of "Narek Probyan" and no other, saying "unwilling"
    And the register still holds only the events the auditor noted
    And no exchange is recorded
    And "Aram Testyan" and "Narek Probyan" are still held by AZ at "Hadrut"

    When the case worker records the exchange on 2021-07-03 at "the border near Sadarak", mediated by RU, in the negotiation, in which:
      | person        | from | to | outcome     | refused by |
      | Aram Testyan  | AZ   | AM | handed over |            |
      | Narek Probyan | AZ   | AM | refused     | person     |
    Then the register answers 201
    And the exchange records 1 handed over by AZ to AM, 1 refused and 0 absent
    And the exchange records that "Narek Probyan" was refused by the person
    And "Aram Testyan" is "repatriated", held by nobody
    And "Narek Probyan" is still held by AZ at "Hadrut"
    And the reconciliation lists "Aram Testyan" as handed over
    And the reconciliation lists nobody as handed over without a willingness check
    And the reconciliation lists "Narek Probyan" as refused
    And the reconciliation lists "Narek Probyan" as outstanding

  Scenario: A unilateral release, outside any negotiation
    Given the case worker has recorded that AZ captured "Aram Testyan" and "Narek Probyan", prisoners of war of AM, at "Hadrut" on 2020-11-09
    When the case worker records that AZ released "Aram Testyan" to AM on 2021-05-04, according to AZ
    Then the register answers 201
    And "Aram Testyan" is "repatriated", held by nobody
    And the history of "Aram Testyan" ends with "released", in no exchange
    And the case of "Aram Testyan" is in no negotiation
    And no exchange is recorded
    And the reconciliation lists nobody as handed over
    And the reconciliation lists "Narek Probyan" as outstanding

  Scenario: A person handed over to a third country is released there, not repatriated
    Given the case worker has recorded that AZ captured "Aram Testyan", a prisoner of war of AM, at "Hadrut" on 2020-11-09
    And the case worker has recorded that AZ captured "Vahe Samplov", a civilian internee of AM, at "Shusha" on 2020-11-08
    When the case worker records the exchange on 2021-12-01 at "Istanbul airport", mediated by the ICRC, in the negotiation, in which:
      | person       | from | to | outcome     |
      | Aram Testyan | AZ   | AM | handed over |
      | Vahe Samplov | AZ   | TR | handed over |
    Then the register answers 201
    And "Aram Testyan" is "repatriated", held by nobody
    And "Vahe Samplov" is "released", held by nobody
    And the exchange records 1 handed over by AZ to AM, 0 refused and 0 absent
    And the exchange records 1 handed over by AZ to TR, 0 refused and 0 absent
    And the reconciliation lists "Aram Testyan" and "Vahe Samplov" as handed over
    And the reconciliation lists nobody as outstanding

  Scenario: An exchange with one person who cannot take part records nothing at all
    Given the case worker has recorded that AZ captured "Aram Testyan", "Narek Probyan" and "Vahe Samplov", prisoners of war of AM, at "Hadrut" on 2020-11-09
    And the case worker has recorded that AZ asserted "Narek Probyan" died at "Baku" on 2021-03-01
    And the auditor has noted how many events the register holds
    When the case worker records the exchange on 2021-07-03 at "the border near Sadarak", mediated by RU, in the negotiation, in which AZ hands "Aram Testyan", "Narek Probyan" and "Vahe Samplov" over to AM
    Then the register answers 409 "invalid-transition"
    And the answer names the case of "Narek Probyan" and no other, saying "recorded dead"
    And the register still holds only the events the auditor noted
    And no exchange is recorded
    And "Aram Testyan" and "Vahe Samplov" are still held by AZ at "Hadrut"
    And "Narek Probyan" is still "deceased"
    And the reconciliation lists nobody as handed over

  Scenario: The two sides announce different numbers for one exchange
    Given the case worker has recorded that AZ captured "Levon Testyan1" to "Levon Testyan13", prisoners of war of AM, at "Hadrut" on 2020-11-09
    When the case worker records the exchange on 2021-07-03 at "the border near Sadarak", mediated by RU, in the negotiation, announced as 12 by AZ and 14 by AM, in which AZ hands "Levon Testyan1" to "Levon Testyan13" over to AM
    Then the register answers 201
    And the exchange records 13 handed over by AZ to AM, 0 refused and 0 absent
    And the exchange keeps each side's announced figure beside the one recorded:
      | announced by | announced | recorded | difference |
      | AZ           | 12        | 13       | -1         |
      | AM           | 14        | 13       | 1          |
